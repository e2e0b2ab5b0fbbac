"""`finops-assets` command line: chores around the Dagster project that need no Dagster instance."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from finops_assets.samples.aws_cur import generate_aws_cur
from finops_assets.samples.aws_data_exports import generate_cur2_export
from finops_assets.samples.azure import generate_azure_cost
from finops_assets.samples.focus import SUPPORTED_FORMATS, generate_sample_exports
from finops_assets.samples.gcp import generate_gcp_billing
from finops_assets.sources import DEFAULT_SAMPLE_SOURCES as DEFAULT_SOURCES
from finops_assets.sources import SAMPLE_SOURCES as SOURCES


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2025-01-01") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _subset_of(allowed: Sequence[str]):
    """An argparse type for a comma-separated, de-duplicated subset of ``allowed``."""

    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(part.strip().lower() for part in text.split(",") if part.strip())
        if not chosen or any(c not in allowed for c in chosen):
            raise argparse.ArgumentTypeError(
                f"{text!r}: give a comma-separated subset of {', '.join(allowed)}"
            )
        return tuple(dict.fromkeys(chosen))

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finops-assets",
        description="Tools for the finops_assets Dagster project.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sample = commands.add_parser(
        "sample-data",
        help="write synthetic billing exports (FOCUS, AWS CUR, Azure, GCP) into a landing folder",
        description=(
            "Write synthetic FOCUS 1.2 deliveries from AWS (Parquet, USD), Azure (CSV, EUR) and "
            "GCP (Parquet, USD) under OUT/focus/, one per provider and billing month, an AWS "
            "legacy Cost and Usage Report (gzip CSV, every line item type) under OUT/aws-cur/, Azure "
            "Cost Management exports (ActualCost + AmortizedCost, FocusCost) under OUT/azure/, "
            "and Google Cloud billing export dumps (nested Parquet) under OUT/gcp/, each with a "
            "restatement of the first month (GCP: a later re-export of the first day); on request "
            "an AWS Data Exports CUR 2.0 export under OUT/aws-data-exports/. The same seed always writes the same "
            "bytes."
        ),
    )
    sample.add_argument("--out", type=Path, required=True, help="landing folder to write into")
    sample.add_argument(
        "--start", type=_iso_date, required=True, help="first charge day, YYYY-MM-DD"
    )
    sample.add_argument("--days", type=_positive_int, required=True, help="number of charge days")
    sample.add_argument(
        "--rows-per-day",
        type=_positive_int,
        required=True,
        help="rows per charge day over all providers (about 50%% AWS, 30%% Azure, 20%% GCP)",
    )
    sample.add_argument("--seed", type=int, required=True, help="random seed")
    sample.add_argument(
        "--formats",
        type=_subset_of(SUPPORTED_FORMATS),
        default=SUPPORTED_FORMATS,
        help="parquet,csv (default: each provider's own format) or one of them for all providers",
    )
    sample.add_argument(
        "--sources",
        type=_subset_of(SOURCES),
        default=DEFAULT_SOURCES,
        help=(
            "focus,aws-cur,azure,gcp (default) and/or aws-exports (an AWS Data Exports CUR 2.0 "
            "export, from its own seed so it never repeats the legacy CUR's charges)"
        ),
    )
    sample.add_argument(
        "--gcp-rows-per-day",
        type=_positive_int,
        default=None,
        help="GCP billing export rows per usage day (default: a fifth of --rows-per-day)",
    )
    sample.add_argument(
        "--cur-rows-per-day",
        type=_positive_int,
        default=None,
        help="CUR line items per charge day (default: half of --rows-per-day)",
    )
    sample.add_argument(
        "--cur-flavour",
        choices=("csv", "parquet"),
        default="csv",
        help="CUR files as gzip CSV with slash names (default) or Athena Parquet with snake names",
    )
    sample.add_argument(
        "--azure-rows-per-day",
        type=_positive_int,
        default=None,
        help="Azure export rows per charge day (default: an eighth of --rows-per-day)",
    )
    sample.set_defaults(handler=_sample_data)

    anomaly = commands.add_parser("anomaly", help="anomalies found by insights/anomalies")
    anomaly_commands = anomaly.add_subparsers(dest="anomaly_command", required=True)
    feedback = anomaly_commands.add_parser(
        "feedback",
        help="record a verdict on an anomaly (counted in insights/anomaly_quality)",
        description=(
            "yes: a real, unexpected change; no: a false alarm; planned: real but known in "
            "advance. The latest verdict per anomaly counts; earlier ones are kept."
        ),
    )
    feedback.add_argument("anomaly_id", help="the id shown in the alert and in the UI")
    feedback.add_argument("verdict", choices=("yes", "no", "planned"))
    feedback.add_argument("--note", default=None, help="why (shown beside the verdict)")
    feedback.add_argument(
        "--warehouse",
        default=None,
        help="the warehouse file (default: FINOPS_WAREHOUSE, else data/warehouse.duckdb)",
    )
    feedback.set_defaults(handler=_anomaly_feedback)

    close = commands.add_parser(
        "close-month",
        help="close a billing month: reconcile invoices, write the journal snapshot",
        description=(
            "Runs the close_month job for PERIOD (finance/invoices, invoice_reconciliation, "
            "chargeback, month_close) on the Dagster instance of DAGSTER_HOME. Refused while the "
            "month is incomplete or an issued invoice does not reconcile. Writes "
            "closed/PERIOD/v<n>/ (journal.csv, journal.parquet, control.json); closing an "
            "unchanged month again changes nothing."
        ),
    )
    close.add_argument("period", type=_billing_month, help="the billing month, YYYY-MM")
    close.add_argument(
        "--new-version",
        action="store_true",
        help="close an already closed month again as v<n+1> (the earlier version stays)",
    )
    close.set_defaults(handler=_close_month)

    publish = commands.add_parser(
        "publish",
        help="publish the warehouse to the serving zone readers query",
        description=(
            "Copies the facts, marts, insights and finance tables to the serving zone "
            "(FINOPS_SERVING_DIR, default data/serving/: one Parquet file per table and day, "
            "and the read-only DuckDB snapshot data/serving.duckdb), then to the bucket "
            "FINOPS_SERVING_URL and the PostgreSQL marts FINOPS_PUBLISH_URL when they are set. "
            "The daemon does this after every successful run; run it by hand once after "
            "upgrading, or without a daemon."
        ),
    )
    publish.add_argument(
        "--day",
        dest="days",
        action="append",
        type=date.fromisoformat,
        help="only this day of the daily tables (repeatable; default: every day)",
    )
    publish.add_argument(
        "--schema",
        dest="schemas",
        action="append",
        choices=("core", "mart", "insights", "finance"),
        help="only this schema (repeatable; default: all four)",
    )
    publish.set_defaults(handler=_publish)
    return parser


def _publish(args: argparse.Namespace) -> int:
    from finops_assets.lib import publishing, serving
    from finops_assets.lib import warehouse as wh
    from finops_assets.settings import Settings

    settings = Settings.from_env()
    if not Path(settings.warehouse).exists():
        raise ValueError(f"no warehouse at {settings.warehouse}; set FINOPS_WAREHOUSE")
    with wh.connect(str(Path(settings.warehouse).absolute())) as con:
        try:
            publishing.publish_all(
                con,
                settings.serving_path.absolute(),
                schemas=args.schemas or serving.SERVED_SCHEMAS,
                days=args.days,
                serving_url=settings.serving_url,
                publish_url=settings.publish_url,
                log=print,
            )
        except publishing.TargetError as error:  # the local zone is published all the same
            failed: publishing.TargetError | None = error
        else:
            failed = None
    print(f"snapshot: {serving.snapshot_path(settings.serving_path.absolute())}")
    if failed is not None:
        print(f"error: {failed}", file=sys.stderr)
        return 1
    return 0


def _billing_month(text: str) -> str:
    try:
        return date.fromisoformat(f"{text}-01").strftime("%Y-%m")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a billing month (YYYY-MM)") from None


def _close_month(args: argparse.Namespace) -> int:
    from finops_assets.defs.finance.assets import run_close_month

    ok, lines = run_close_month(args.period, new_version=args.new_version)
    for line in lines:
        print(line, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _anomaly_feedback(args: argparse.Namespace) -> int:
    import getpass

    from finops_assets.lib import warehouse as wh
    from finops_assets.lib.anomaly_feedback import record_feedback
    from finops_assets.settings import Settings

    database = args.warehouse or Settings.from_env().warehouse
    if not Path(database).exists():
        raise ValueError(f"no warehouse at {database}; set FINOPS_WAREHOUSE or pass --warehouse")
    with wh.connect(str(Path(database).absolute()), lock_timeout_seconds=600) as con:
        recorded = record_feedback(con, args.anomaly_id, args.verdict, args.note, getpass.getuser())
    changed = f" (was {recorded.previous})" if recorded.previous else ""
    print(
        f"Recorded {recorded.verdict}{changed} for anomaly {recorded.anomaly_id} "
        f"({recorded.monitor} {recorded.series}); insights/anomaly_quality counts it when it is "
        "next materialized."
    )
    return 0


def _sample_data(args: argparse.Namespace) -> int:
    if "gcp" in args.sources:
        gcp = generate_gcp_billing(
            args.out,
            args.start,
            args.days,
            args.gcp_rows_per_day or max(1, args.rows_per_day // 5),
            args.seed,
        )
        print(
            f"Wrote GCP billing export dumps for {gcp.billing_account}: {gcp.total_rows:,} rows "
            f"in {len(gcp.files)} files in {gcp.seconds:.1f} s (correction re-export of "
            f"{gcp.correction_day})."
        )
    if "aws-cur" in args.sources:
        cur = generate_aws_cur(
            args.out,
            args.start,
            args.days,
            args.cur_rows_per_day or max(1, args.rows_per_day // 2),
            args.seed,
            flavour=args.cur_flavour,
        )
        restated = ", ".join(d.isoformat() for d in cur.restated_days)
        print(
            f"Wrote AWS CUR report {cur.report}: {len(cur.assemblies)} assemblies, "
            f"{cur.total_rows:,} line items in {cur.seconds:.1f} s (restated days {restated})."
        )
    if "aws-exports" in args.sources:
        export = generate_cur2_export(
            args.out,
            args.start,
            args.days,
            args.cur_rows_per_day or max(1, args.rows_per_day // 2),
            args.seed + 1,
        )
        print(
            f"Wrote AWS Data Exports CUR 2.0 export {export.export}: "
            f"{sum(export.rows_by_period.values()):,} line items in "
            f"{len(export.manifests)} billing period(s)."
        )
    if "azure" in args.sources:
        azure = generate_azure_cost(
            args.out,
            args.start,
            args.days,
            args.azure_rows_per_day or max(1, args.rows_per_day // 8),
            args.seed,
        )
        print(
            f"Wrote Azure exports: {len(azure.runs)} runs, {azure.total_rows:,} rows in "
            f"{azure.seconds:.1f} s (first month restated by a second run)."
        )
    if "focus" not in args.sources:
        return 0
    summary = generate_sample_exports(
        out=args.out,
        start=args.start,
        days=args.days,
        rows_per_day=args.rows_per_day,
        seed=args.seed,
        formats=args.formats,
    )
    restated = ", ".join(d.isoformat() for d in summary.restated_days)
    print(
        f"Wrote {len(summary.deliveries)} deliveries, {len(summary.files)} files, "
        f"{summary.total_rows:,} rows to {args.out} in {summary.seconds:.1f} s."
    )
    print(f"Restated billing month {summary.restated_month}: charge days {restated} changed.")
    for delivery in summary.deliveries:
        print(f"  {delivery.as_posix()}  {summary.rows_by_delivery[delivery.as_posix()]:,} rows")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `finops-assets` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, OSError) as error:
        print(f"finops-assets {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
