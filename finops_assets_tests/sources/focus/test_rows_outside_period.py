"""FOCUS rows dated outside their delivery's billing period: a FOCUS delivery of billing period P
is read by the loads of P and of the correction_months months before it (corrections are billed
later, dated in the month they correct). Rows dated anywhere else would fall on no day: they are
counted per file with their Σ BilledCost and handled per ``rules.deliveries.rows_outside_period``
(fail by default, load into their own days, or drop with a warning and metadata), as for the CUR.

The deliveries are hand-made FOCUS 1.0 CSV rows (one SaaS usage line of the layout fixture as the
template, its columns as the specification names them) in our manifest layout."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow.csv as pacsv
import pytest

from finops_assets.samples.focus import delivery_path, write_delivery
from finops_assets_tests.conftest import (
    failed_checks,
    failure_messages,
    run_metadata,
    with_rows_outside_period,
)
from finops_assets_tests.paths import LAYOUTS

TEMPLATE = LAYOUTS / "focus_layouts/focus/acme-saas/costs/acme_focus_2024-02.csv"
PERIOD_END = {"2024-02": "2024-03-01", "2024-03": "2024-04-01", "2024-04": "2024-05-01"}
MONEY = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")


def focus_row(period: str, day: str, cost: str, category: str = "Usage") -> dict:
    (template,) = csv.DictReader(io.StringIO(TEMPLATE.read_text()))
    end = f"{day[:8]}{int(day[8:]) + 1:02d}"
    return {
        **template,
        "BillingPeriodStart": f"{period}-01T00:00:00Z",
        "BillingPeriodEnd": f"{PERIOD_END[period]}T00:00:00Z",
        "ChargePeriodStart": f"{day}T00:00:00Z",
        "ChargePeriodEnd": f"{end}T00:00:00Z",
        "ChargeCategory": category,
        **{column: cost for column in MONEY},
    }


def deliver(landing, period: str, rows: list[dict]) -> str:
    """One complete delivery of acme/costs for ``period``; returns its data file's landing key."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    table = pacsv.read_csv(
        io.BytesIO(text.getvalue().encode()),
        convert_options=pacsv.ConvertOptions(
            column_types={c: "string" for c in rows[0]}, strings_can_be_null=True
        ),
    )
    delivery_id = f"{period.replace('-', '')}15T000000Z-acme"
    folder = delivery_path(landing, "acme", "costs", period, delivery_id)
    created = datetime(int(period[:4]), int(period[5:]), 15, tzinfo=UTC)
    write_delivery(folder, table, "Acme SaaS", "costs", period, created, "csv")
    (part,) = folder.glob("part-*")
    return str(part.relative_to(landing))


def three_deliveries(landing) -> str:
    """February, March and April; March's also carries a February credit (a correction, one
    month back) and a row dated in April (outside its period). Returns March's file key."""
    deliver(landing, "2024-02", [focus_row("2024-02", "2024-02-10", "1.00")])
    march = deliver(
        landing,
        "2024-03",
        [
            focus_row("2024-03", "2024-03-05", "2.00"),
            focus_row("2024-03", "2024-03-06", "3.00"),
            focus_row("2024-03", "2024-02-20", "-0.50", "Credit"),
            focus_row("2024-03", "2024-04-02", "5.00"),
        ],
    )
    deliver(landing, "2024-04", [focus_row("2024-04", "2024-04-01", "4.00")])
    return march


def load(pipeline):
    return pipeline.materialize("2024-02-01", "2024-04-30", ["raw/focus", "core/cost_facts"])


def billed_by_day(pipeline) -> list[tuple[str, str, Decimal]]:
    return pipeline.query(
        "SELECT charge_date::VARCHAR, BillingCurrency, sum(BilledCost) FROM core.cost_facts "
        "GROUP BY ALL ORDER BY ALL"
    )


EVERY_DAY = [
    ("2024-02-10", "USD", Decimal("1.00")),
    ("2024-02-20", "USD", Decimal("-0.50")),
    ("2024-03-05", "USD", Decimal("2.00")),
    ("2024-03-06", "USD", Decimal("3.00")),
    ("2024-04-01", "USD", Decimal("4.00")),
    ("2024-04-02", "USD", Decimal("5.00")),
]


def as_cents(rows):
    return [
        (day, currency, Decimal(amount).quantize(Decimal("0.01"))) for day, currency, amount in rows
    ]


def test_fail_by_default_naming_the_file_its_rows_and_money(pipeline):
    march = three_deliveries(pipeline.landing)
    result = load(pipeline)
    assert not result.success
    assert (
        "Rows dated outside their export's billing period (rules.deliveries.rows_outside_period "
        f"= fail): {pipeline.landing / march}: 1 row(s) of billing period 2024-03 dated "
        "2024-04-02..2024-04-02, Σ BilledCost USD 5.00. Only rows dated in the correction_months "
        "= 1 month(s) before their period are loaded into their own days; these would be lost. "
        "Fix: set deliveries.rows_outside_period to load (rows dated up to correction_months "
        "after their period land in their own days) or drop (left out, counted in the run's "
        "metadata) in the rules YAML (FINOPS_CONFIG), or re-deliver the export; nothing was "
        "written."
    ) in failure_messages(result)
    assert pipeline.query(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'focus'"
    ) == [(0,)]


def test_load_places_them_in_their_own_days(pipeline, tmp_path):
    three_deliveries(with_rows_outside_period(pipeline, tmp_path, "load").landing)
    result = load(pipeline)
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    assert as_cents(billed_by_day(pipeline)) == EVERY_DAY
    assert pipeline.query(
        "SELECT x_BillingPeriod FROM raw.focus WHERE charge_date = DATE '2024-04-02'"
    ) == [("2024-03",)]
    assert run_metadata(result, "raw/focus", "rows_outside_period") == {0}


def test_drop_leaves_them_out_and_counts_them(pipeline, tmp_path):
    three_deliveries(with_rows_outside_period(pipeline, tmp_path, "drop").landing)
    result = load(pipeline)
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    assert as_cents(billed_by_day(pipeline)) == [d for d in EVERY_DAY if d[0] != "2024-04-02"]
    assert run_metadata(result, "raw/focus", "rows_outside_period") == {1}
    assert run_metadata(result, "raw/focus", "rows_outside_period_billed") == {"USD 5.00"}


@pytest.mark.parametrize("mode", ["fail", "drop"])
def test_corrections_within_the_window_are_not_outside(pipeline, tmp_path, mode):
    """A correction one month back (correction_months = 1) loads in every mode."""
    with_rows_outside_period(pipeline, tmp_path, mode)
    deliver(pipeline.landing, "2024-02", [focus_row("2024-02", "2024-02-10", "1.00")])
    deliver(
        pipeline.landing,
        "2024-03",
        [
            focus_row("2024-03", "2024-03-05", "2.00"),
            focus_row("2024-03", "2024-02-20", "-0.50", "Credit"),
        ],
    )
    result = pipeline.materialize("2024-02-01", "2024-03-31", ["raw/focus", "core/cost_facts"])
    assert result.success, failure_messages(result)
    assert as_cents(billed_by_day(pipeline)) == [EVERY_DAY[0], EVERY_DAY[1], EVERY_DAY[2]]
    assert run_metadata(result, "raw/focus", "rows_outside_period") == {0}
