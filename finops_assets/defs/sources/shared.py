"""What every raw source does the same way."""

from dataclasses import replace

import dagster as dg
import duckdb

from finops_assets.lib.deliveries import (
    EXPORT_ROOT,
    DataExportDelivery,
    DeliveryError,
    export_kind,
    export_period_of,
    find_data_export_manifests,
    parse_data_export_manifest,
)
from finops_assets.lib.focus_load import describe_file
from finops_assets.metadata import add_daily_money_metadata, days_between
from finops_assets.resources.landing import LandingZone
from finops_assets.resources.warehouse import Warehouse


def no_deliveries_result(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    table: str,
    days,
    where: str,
) -> dg.MaterializeResult:
    """A landing zone that carries none of this source's exports (the team does not use it):
    the days are stored empty instead of failing, and the run log says why."""
    cleared = warehouse.clear_partitions(table, days_between(days))
    context.log.info(f"No deliveries under {where}: {table} stays empty for these days.")
    add_daily_money_metadata(context, {}, days)
    return dg.MaterializeResult(
        metadata={"deliveries": dg.MetadataValue.text(""), "rows_cleared": cleared}
    )


def discover_data_exports(
    landing: LandingZone,
) -> tuple[list[DataExportDelivery], list[tuple[str, DeliveryError]]]:
    """AWS Data Exports deliveries (CUR 2.0 and FOCUS 1.0) with their kind resolved, and the
    manifests that cannot be loaded as (billing period, error).

    The kind comes from the columns the manifest declares or, when it declares none, from the
    first data file's header. A broken manifest's kind is unknown, so it stops both AWS loads
    (raw/aws_cur and raw/focus) for its month rather than risk loading an outdated month.
    """
    objects = landing.list(EXPORT_ROOT)
    present = {o.key: o for o in objects}
    deliveries, broken = [], []
    for manifest in find_data_export_manifests(objects):
        where = landing.url(manifest.key)
        try:
            delivery = parse_data_export_manifest(
                manifest, landing.read_bytes(manifest.key), present, where
            )
            if delivery.kind is None:
                first = delivery.files[0]
                with landing.local_files([first.key]) as paths, duckdb.connect() as con:
                    columns = describe_file(
                        con, paths[first.key], first.format, landing.url(first.key)
                    )
                kind = export_kind(columns)
                if kind is None:
                    raise DeliveryError(
                        f"{where}: {landing.url(first.key)} is neither CUR 2.0 (line_item_* "
                        "columns) nor FOCUS (BilledCost, ChargePeriodStart); only those two "
                        "Data Exports tables are supported."
                    )
                delivery = replace(delivery, kind=kind)
            deliveries.append(delivery)
        except DeliveryError as error:
            broken.append((export_period_of(manifest.key) or "", error))
    return deliveries, broken
