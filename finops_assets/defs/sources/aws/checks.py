"""Contract on raw/aws_cur."""

import dagster as dg

from finops_assets.contracts.checks import build_contract_check
from finops_assets.contracts.models import RawAwsCur
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.aws.assets import RAW_AWS_CUR_TABLE


def build(ctx: DefsContext) -> dg.Definitions:
    raw_aws_cur_contract = build_contract_check(
        RawAwsCur, dg.AssetKey(["raw", "aws_cur"]), RAW_AWS_CUR_TABLE, ctx.partitions
    )

    return definitions_of(raw_aws_cur_contract)
