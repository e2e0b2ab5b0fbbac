"""Checks on raw/aws_cur: its contract, the restatement guard, and every object under aws-cur/ and aws-data-exports/
accounted for (loaded, superseded, waiting, metadata, or named as not understood)."""

import dagster as dg

from finops_assets.contracts.models import RawAwsCur
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.aws.assets import RAW_AWS_CUR_TABLE
from finops_assets.defs.sources.aws.deliveries import account_landing
from finops_assets.defs.sources.shared import build_raw_source_checks


def build(ctx: DefsContext) -> dg.Definitions:
    return definitions_of(
        build_raw_source_checks(
            "aws_cur",
            RawAwsCur,
            RAW_AWS_CUR_TABLE,
            "aws-cur/ and aws-data-exports/",
            account_landing,
            ctx.partitions,
        )
    )
