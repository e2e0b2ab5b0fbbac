"""AWS delivery sensors: the legacy CUR's period manifests and AWS Data Exports' manifests."""

import dagster as dg

from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.aws.deliveries import (
    RAW_AWS_CUR,
    RAW_FOCUS,
    scan_aws_cur,
    scan_aws_data_exports,
)
from finops_assets.defs.sources.shared import build_delivery_sensor


def build(ctx: DefsContext) -> dg.Definitions:
    return definitions_of(
        build_delivery_sensor(
            "aws_cur_deliveries",
            scan_aws_cur,
            [RAW_AWS_CUR],
            "Legacy CUR: loads a month's days when its period manifest names a new assemblyId "
            "whose reportKeys are all present (Athena-integrated reports: when a month's files "
            "change and the cost_and_usage_data_status table says READY).",
            ctx.partitions,
        ),
        build_delivery_sensor(
            "aws_data_exports_deliveries",
            scan_aws_data_exports,
            [RAW_AWS_CUR, RAW_FOCUS],
            "AWS Data Exports (CUR 2.0 into raw/aws_cur, FOCUS into raw/focus): loads a month's "
            "days when its manifest is rewritten with every dataFile present.",
            ctx.partitions,
        ),
    )
