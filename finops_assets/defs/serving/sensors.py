"""Publishing the serving zone after each successful run.

``serving_after_success`` watches for runs that succeed (every check passed: a run stopped by a
blocking check publishes nothing, so readers keep the last good data) and requests one
``publish_serving`` run for the schemas and days that run materialized. That run takes the
warehouse pool slot like any writer, reads the warehouse and rewrites only the serving files of
those days (``lib/serving.py``), then the bucket copy of the zone (FINOPS_SERVING_URL) and the
PostgreSQL marts (FINOPS_PUBLISH_URL) when configured (``lib/publishing.py``). Readers of
``data/serving/`` and ``data/serving.duckdb`` never touch the warehouse file, so nothing they
hold can make a pipeline run fail.
"""

import contextlib
from datetime import date

import dagster as dg
from pydantic import Field

from finops_assets.contracts.checks import WAREHOUSE_POOL
from finops_assets.defs.context import DefsContext
from finops_assets.lib import publishing, serving
from finops_assets.resources.warehouse import Warehouse

PUBLISH_JOB = "publish_serving"
PUBLISH_OP = "publish_serving_zone"
SOURCE_RUN_TAG = "finops/published_run"
# Asset key prefix -> warehouse schema of the tables it writes.
SCHEMA_OF_PREFIX = {"core": "core", "mart": "mart", "insights": "insights", "finance": "finance"}


class PublishConfig(dg.Config):
    schemas: list[str] = Field(default=list(serving.SERVED_SCHEMAS))
    # ISO days of the daily tables to publish; none: every day (and the files of days the
    # warehouse no longer has are removed).
    days: list[str] = Field(default=[])


def publish_request(records: list, run_id: str) -> dg.RunRequest | dg.SkipReason:
    """The publish run for a succeeded run's materializations (event log records)."""
    schemas, days = set(), set()
    for record in records:
        event = record.event_log_entry.dagster_event
        key = event.asset_key
        schema = SCHEMA_OF_PREFIX.get(key.path[0]) if key else None
        if schema is None:
            continue
        schemas.add(schema)
        partition = event.partition
        if partition:
            with contextlib.suppress(ValueError):  # a monthly key is a date too; others skip
                days.add(date.fromisoformat(partition))
    if not schemas:
        return dg.SkipReason(f"run {run_id} materialized nothing that is served")
    return dg.RunRequest(
        run_key=f"publish-after-{run_id}",
        run_config={
            "ops": {
                PUBLISH_OP: {
                    "config": {
                        "schemas": sorted(schemas),
                        # None (an unpartitioned materialization): every day.
                        "days": sorted(d.isoformat() for d in days),
                    }
                }
            }
        },
        tags={SOURCE_RUN_TAG: run_id},
    )


def build(ctx: DefsContext) -> dg.Definitions:
    serving_dir = ctx.settings.serving_path
    publish_url = ctx.settings.publish_url
    serving_url = ctx.settings.serving_url

    @dg.op(name=PUBLISH_OP, pool=WAREHOUSE_POOL)
    def publish_serving(
        context: dg.OpExecutionContext, config: PublishConfig, warehouse: Warehouse
    ) -> None:
        """Copy the given schemas and days from the warehouse to the serving zone."""
        unknown = sorted(set(config.schemas) - set(serving.SERVED_SCHEMAS))
        if unknown:
            raise dg.Failure(
                f"cannot publish schema(s) {', '.join(unknown)}; served schemas are "
                f"{', '.join(serving.SERVED_SCHEMAS)}"
            )
        days = [date.fromisoformat(d) for d in config.days] or None
        with warehouse.get_connection() as con:
            try:
                summary = publishing.publish_all(
                    con,
                    serving_dir.absolute(),
                    schemas=config.schemas,
                    days=days,
                    serving_url=serving_url,
                    publish_url=publish_url,
                    log=context.log.info,
                )
            except publishing.TargetError as error:
                raise dg.Failure(
                    f"{error} The local serving zone {serving_dir.absolute()} is published.",
                    metadata={
                        "tables": dg.MetadataValue.int(len(error.summary.tables)),
                        "postgres_table_days_before_the_error": dg.MetadataValue.int(
                            len(error.summary.replicated)
                        ),
                    },
                ) from None
        done, mirrored = summary.tables, summary.mirrored
        context.add_output_metadata(
            {
                "serving_dir": dg.MetadataValue.path(str(serving_dir.absolute())),
                "snapshot": dg.MetadataValue.path(
                    str(serving.snapshot_path(serving_dir.absolute()))
                ),
                "tables": dg.MetadataValue.int(len(done)),
                "files_written": dg.MetadataValue.int(sum(t.days_written for t in done)),
                "rows": dg.MetadataValue.int(sum(t.rows for t in done)),
                "postgres_table_days": dg.MetadataValue.int(len(summary.replicated)),
                **(
                    {
                        "serving_url": dg.MetadataValue.text(mirrored.url),
                        "objects_uploaded": dg.MetadataValue.int(mirrored.uploaded),
                        "bytes_uploaded": dg.MetadataValue.int(mirrored.bytes_uploaded),
                        "objects_deleted": dg.MetadataValue.int(mirrored.deleted),
                    }
                    if mirrored
                    else {}
                ),
            }
        )

    @dg.job(
        name=PUBLISH_JOB,
        description=(
            "Publish the facts, marts, insights and finance tables to the serving zone "
            "(data/serving/ Parquet and the data/serving.duckdb snapshot, then "
            "FINOPS_SERVING_URL and FINOPS_PUBLISH_URL when set) for readers."
        ),
        tags={"finops/kind": "publish"},
    )
    def publish_job() -> None:
        publish_serving()

    @dg.run_status_sensor(
        name="serving_after_success",
        run_status=dg.DagsterRunStatus.SUCCESS,
        request_job=publish_job,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After each successful run, publishes what it materialized for readers.",
    )
    def serving_after_success(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        if run.job_name == PUBLISH_JOB:
            return dg.SkipReason("a publish run")
        records = context.instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        return publish_request(records, run.run_id)

    return dg.Definitions(jobs=[publish_job], sensors=[serving_after_success])
