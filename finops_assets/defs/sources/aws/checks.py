"""Contract on raw/aws_cur."""

import dagster as dg

from finops_assets.contracts.checks import build_contract_check
from finops_assets.contracts.models import RawAwsCur
from finops_assets.defs.sources.aws.assets import RAW_AWS_CUR_TABLE
from finops_assets.partitions import daily_partitions

raw_aws_cur_contract = build_contract_check(
    RawAwsCur, dg.AssetKey(["raw", "aws_cur"]), RAW_AWS_CUR_TABLE, daily_partitions
)
