"""Classic Azure exports (no manifest.json: one ``<export>_<guid>.csv`` per run, the newest settled
file wins), from the hand-made layouts of fixtures/layouts/azure_classic*, and the account of
every object under azure/."""

import json
import os
import shutil
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finops_assets.defs.sources.azure.cost_details import (
    AzureFormatError,
    resolve_azure_layout,
)
from finops_assets.defs.sources.azure.deliveries import (
    account_landing,
    azure_scope_months,
    classic_billing_period,
    classic_export_type,
    discover_azure,
    newest_azure_runs,
    scan_azure,
)
from finops_assets.defs.sources.azure.load import staging_sql
from finops_assets.lib.rules import default_rules_path, load_rules
from finops_assets.resources.landing import LocalLandingZone
from finops_assets_tests.conftest import failed_checks, failure_messages
from finops_assets_tests.paths import LAYOUTS
from finops_assets_tests.sources.azure.test_assets import deliver_azure

CLASSIC = LAYOUTS / "azure_classic"
HEADER_ONLY = LAYOUTS / "azure_classic_header_only"
EA = "azure/ea-enrollment-87654321/acme-ea-daily-actual/20240301-20240331"
EA_OLD = f"{EA}/acme-ea-daily-actual_d4c3b2a1-9f8e-4d7c-8b6a-5f4e3d2c1b0a.csv"
EA_NEW = f"{EA}/acme-ea-daily-actual_1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d.csv"
MCA = (
    "azure/billing-profile-AB12-CD34-EF5-GH6/contoso-mca-actual/20240301-20240331/"
    "contoso-mca-actual_7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9.csv"
)
PARTNER = (
    "azure/partner-customer-northwind/fabrikam-partner-northwind/20240301-20240331/"
    "fabrikam-partner-northwind_5b4a3928-1706-4f5e-9d4c-3b2a19080706.csv"
)
SETTLED = datetime(2024, 3, 5, tzinfo=UTC)  # expected.json settle_reference_utc
RULES = load_rules(None)  # deliveries.settle_minutes: 60


def copy_case(case: Path, landing: Path) -> None:
    """The case's files under ``landing`` with the modification times expected.json records
    (git does not keep them, and the classic layout's run order is the files' mtime)."""
    shutil.copytree(case / "azure", landing / "azure", dirs_exist_ok=True)
    expected = json.loads((case / "expected.json").read_text())
    for rel, when in expected["file_mtimes_utc"].items():
        stamp = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        os.utime(landing / rel, (stamp, stamp))


def touch(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def landing_of(root: Path) -> LocalLandingZone:
    return LocalLandingZone(root=str(root))


def expected_by_day(case: Path) -> list[tuple[str, str, Decimal]]:
    by_day = json.loads((case / "expected.json").read_text())["totals"]["billed"]["by_day"]
    return [
        (day, currency, Decimal(amount))
        for day, amounts in sorted(by_day.items())
        for currency, amount in sorted(amounts.items())
    ]


CAD_RUN = (
    "Date,BillingAccountId,BillingCurrencyCode,SubscriptionId,CostInBillingCurrency,ChargeType\n"
    "2024-03-02,555,CAD,sub-c,3.25,Usage\n"
    "2024-03-03,555,CAD,sub-c,1.10,Usage\n"
)


def test_classic_exports_load_to_the_cent_beside_a_manifest_export(pipeline):
    """EA (BOM, M/D/YYYY, 5E-04, two runs whose newer guid sorts first), MCA and partner classic
    files, plus a manifest-layout run of another scope in the same landing zone: per day and
    currency, core.cost_facts holds exactly expected.json's totals (and the manifest run's)."""
    copy_case(CLASSIC, pipeline.landing)
    deliver_azure(
        pipeline.landing,
        "run-cad",
        {"part_0_0001.csv": CAD_RUN.encode()},
        export="cad-actual",
        date_range="20240301-20240331",
        submitted="2024-03-04T06:00:00Z",
    )
    assert sorted(p.name for p in (pipeline.landing / EA).iterdir())[0] == Path(EA_NEW).name
    result = pipeline.materialize(
        "2024-03-01", "2024-03-03", assets=["raw/azure_cost", "core/cost_facts"]
    )
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    facts = pipeline.query(
        "SELECT charge_date::VARCHAR, BillingCurrency, sum(BilledCost) FROM core.cost_facts "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    )
    cad = [("2024-03-02", "CAD", Decimal("3.25")), ("2024-03-03", "CAD", Decimal("1.10"))]
    assert facts == sorted(expected_by_day(CLASSIC) + cad)
    assert pipeline.query(
        "SELECT BillingCurrency, sum(BilledCost) FROM core.cost_facts GROUP BY 1 ORDER BY 1"
    ) == [
        ("CAD", Decimal("4.35")),
        ("EUR", Decimal("54.3005")),
        ("GBP", Decimal("1.8550")),
        ("USD", Decimal("15.1125")),
    ]
    # The newer EA run (by mtime) won; each file was read with its header set.
    assert pipeline.query(
        "SELECT x_SourceFile, x_Schema, x_ExportType, x_CostBasis, x_DeliveryId, count(*) "
        "FROM raw.azure_cost GROUP BY ALL ORDER BY 1"
    ) == [
        (
            MCA,
            "MCA",
            "ActualCost",
            "actual_only",
            "contoso-mca-actual_7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9.csv@5037-20240303T074002Z",
            5,
        ),
        (
            "azure/ea-12345678/cad-actual/20240301-20240331/run-cad/part_0_0001.csv",
            "EA",
            "ActualCost",
            "actual_only",
            "run-cad",
            2,
        ),
        (
            EA_NEW,
            "EA",
            "ActualCost",
            "actual_only",
            "acme-ea-daily-actual_1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d.csv@6283-20240304T050917Z",
            8,
        ),
        (
            PARTNER,
            "MPA",
            "ActualCost",
            "actual_only",
            "fabrikam-partner-northwind_5b4a3928-1706-4f5e-9d4c-3b2a19080706.csv@3915-20240303T060255Z",
            3,
        ),
    ]
    # 5E-04 is a number, not a lost row.
    assert pipeline.query(
        "SELECT CostInBillingCurrency FROM raw.azure_cost WHERE x_SourceFile = ? "
        "AND MeterCategory = 'Bandwidth'",
        [EA_NEW],
    ) == [(Decimal("0.000500000000"),)]


def test_scan_waits_for_the_newest_file_to_settle(tmp_path):
    copy_case(CLASSIC, tmp_path)
    new_id = "acme-ea-daily-actual_1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d.csv@6283-20240304T050917Z"
    # 21 minutes after the newer EA file was written (settle_minutes 60): it waits, the older
    # run stays the EA month's complete delivery.
    early = {
        c.delivery_id: c
        for c in scan_azure(landing_of(tmp_path), RULES, datetime(2024, 3, 4, 5, 30, tzinfo=UTC))
    }
    waiting = early[new_id]
    assert (waiting.complete, waiting.stream, waiting.period, waiting.where) == (
        False,
        "azure/ea-enrollment-87654321/acme-ea-daily-actual",
        "2024-03",
        str(tmp_path / EA_NEW),
    )
    assert waiting.reason == (
        "classic export file changed at 2024-03-04T05:09:17+00:00; it is loaded once it has not "
        "changed for 60 minutes, at 2024-03-04T06:09:17+00:00 (deliveries.settle_minutes)"
    )
    older = early[
        "acme-ea-daily-actual_d4c3b2a1-9f8e-4d7c-8b6a-5f4e3d2c1b0a.csv@3557-20240303T051241Z"
    ]
    assert (older.complete, len(older.days), older.files) == (True, 31, 1)
    # At the settle time it is complete, with the whole month's days.
    settled = {
        c.delivery_id: c
        for c in scan_azure(landing_of(tmp_path), RULES, datetime(2024, 3, 4, 6, 9, 17, tzinfo=UTC))
    }
    assert [settled[new_id].complete, settled[new_id].days[0], settled[new_id].days[-1]] == [
        True,
        date(2024, 3, 1),
        date(2024, 3, 31),
    ]
    assert sorted(c.complete for c in settled.values()) == [True] * 4


def test_the_asset_keeps_the_settled_run_while_a_newer_file_settles(tmp_path):
    copy_case(CLASSIC, tmp_path)
    touch(tmp_path / EA_NEW, SETTLED - timedelta(minutes=10))
    found = discover_azure(landing_of(tmp_path), 60, SETTLED)
    assert [w.obj.key for w in found.waiting] == [EA_NEW]
    assert found.waiting[0].settles_at == SETTLED + timedelta(minutes=50)
    (ea,) = [r for r in newest_azure_runs(found.runs) if r.export == "acme-ea-daily-actual"]
    assert ea.files[0].key == EA_OLD


def test_header_only_run_is_the_newest_delivery_with_zero_rows(tmp_path):
    """What the restatement guard needs to see: a BOM + header-only classic file is a real run of
    its month (no error), the newest one, and it holds 0 rows."""
    copy_case(HEADER_ONLY, tmp_path)
    expected = json.loads((HEADER_ONLY / "expected.json").read_text())
    landing = landing_of(tmp_path)
    found = discover_azure(landing, 60, SETTLED)
    assert (found.broken, found.waiting, found.not_understood) == ((), (), {})
    (newest,) = newest_azure_runs(found.runs)
    assert [f.key for f in newest.files] == [expected["newest_file"]]
    assert (newest.layout, newest.export_type, newest.billing_period) == (
        "classic",
        "ActualCost",
        "2024-03",
    )
    (scope_month,) = azure_scope_months([newest], "2024-03")
    key = newest.files[0].key
    with duckdb.connect() as con:
        selects, counted, outside = staging_sql(
            con,
            scope_month,
            {key: str(tmp_path / key)},
            {key: landing.url(key)},
            (date(2024, 3, 1), date(2024, 3, 31)),
        )
        assert (counted, outside) == ({key: 0}, [])
        assert con.execute(f"SELECT count(*) FROM ({selects[key]})").fetchone() == (0,)
    # The sensor sees it as the newest complete delivery of the month.
    (candidate,) = [
        c for c in scan_azure(landing, RULES, SETTLED) if c.delivery_id == newest.run_id
    ]
    assert (candidate.complete, candidate.created_at) == (
        True,
        datetime(2024, 3, 4, 5, 9, 17, tzinfo=UTC),
    )


def test_an_empty_classic_file_fails_its_month_naming_the_file(tmp_path):
    copy_case(HEADER_ONLY, tmp_path)
    newest = tmp_path / json.loads((HEADER_ONLY / "expected.json").read_text())["newest_file"]
    newest.write_bytes(b"")
    touch(newest, datetime(2024, 3, 4, 5, 9, 17, tzinfo=UTC))
    (broken,) = discover_azure(landing_of(tmp_path), 60, SETTLED).broken
    assert str(broken.error) == (
        f"{newest}: the export file is empty (0 bytes): the copy was cut short (a run with no "
        "charges still has its header line). Fix: copy it again from the export's storage "
        "container, or remove it so the previous run of the month is used."
    )


def test_date_folders_and_export_types_of_classic_runs():
    assert classic_billing_period("20240301", "20240331") == "2024-03"
    assert classic_billing_period("20240201", "20240301") == "2024-02"  # next month's 1st
    assert classic_billing_period("20240201", "20240229") == "2024-02"
    assert classic_billing_period("20240201", "20240228") is None  # 2024 is a leap year
    assert classic_billing_period("20240302", "20240331") is None
    assert classic_billing_period("20241301", "20241331") is None
    assert classic_export_type("acme-ea-daily-actual") == "ActualCost"
    assert classic_export_type("Contoso-Monthly-AMORTIZED") == "AmortizedCost"


def test_header_sets_and_the_unknown_header_error():
    partner = resolve_azure_layout(
        {
            c: "VARCHAR"
            for c in (
                "billingAccountId",
                "partnerTenantId",
                "date",
                "billingCurrency",
                "costInBillingCurrency",
                "PricingModel",
            )
        },
        "ActualCost",
    )
    assert (partner.schema, partner.columns["PricingModel"]) == ("MPA", "PricingModel")
    payg = resolve_azure_layout(
        {
            c: "VARCHAR"
            for c in ("\ufeffSubscriptionGuid", "UsageDateTime", "PreTaxCost", "Currency")
        },
        "ActualCost",
    )
    assert (payg.schema, payg.columns["SubscriptionId"], payg.columns["Date"]) == (
        "EA",
        "\ufeffSubscriptionGuid",
        "UsageDateTime",
    )
    with pytest.raises(AzureFormatError) as unknown:
        resolve_azure_layout(
            {c: "VARCHAR" for c in ("Day", "Amount", "Curr", "Subscription Name")}, "ActualCost"
        )
    assert str(unknown.value) == (
        "ActualCost export is missing column(s) CostInBillingCurrency (accepted names: "
        "CostInBillingCurrency, Cost, PreTaxCost; columns that look like it: none); Date "
        "(accepted names: Date, UsageDateTime, UsageDate; columns that look like it: Day); "
        "BillingCurrency (accepted names: BillingCurrency, BillingCurrencyCode, Currency; "
        "columns that look like it: Curr); BillingAccountId or SubscriptionId (accepted names: "
        "BillingAccountId, EnrollmentNumber, SubscriptionId, SubscriptionGuid; columns that look "
        "like it: Subscription Name): without them its cost cannot be placed by amount, day, "
        "currency and account. The header matches none of the Azure cost details header sets "
        "(EA, MCA, MPA/CSP partner, pay-as-you-go); its first columns are: Day, Amount, Curr, "
        "Subscription Name. Fix: re-create the export as a standard Cost Management 'Cost and "
        "usage details' export (EA, MCA or partner column names, all columns), or rename the "
        "column back to the name Azure uses."
    )
    with pytest.raises(AzureFormatError, match="it is a FOCUS export, not cost details"):
        resolve_azure_layout(
            {c: "VARCHAR" for c in ("BilledCost", "EffectiveCost", "ChargePeriodStart")},
            "ActualCost",
        )


def statuses(rows) -> list[tuple[str, str]]:
    return [(r.key, r.status) for r in rows]


def test_every_object_under_azure_is_accounted_for(tmp_path):
    copy_case(CLASSIC, tmp_path)
    folder = deliver_azure(
        tmp_path,
        "run-cad",
        {"part_0_0001.csv": CAD_RUN.encode()},
        export="cad-actual",
        date_range="20240301-20240331",
        submitted="2024-03-04T06:00:00Z",
    )
    run = "azure/ea-12345678/cad-actual/20240301-20240331/run-cad"
    rows = account_landing(landing_of(tmp_path), RULES, SETTLED)
    assert statuses(rows) == [
        (MCA, "loaded"),
        (f"{run}/manifest.json", "metadata"),
        (f"{run}/part_0_0001.csv", "loaded"),
        (EA_NEW, "loaded"),
        (EA_OLD, "superseded"),
        (PARTNER, "loaded"),
    ]
    assert rows[4].reason == (
        "a newer run of acme-ea-daily-actual for 2024-03 replaces it "
        "(acme-ea-daily-actual_1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d.csv@6283-20240304T050917Z)"
    )
    assert folder == tmp_path / run


def test_objects_not_understood_waiting_and_without_manifest(tmp_path):
    copy_case(CLASSIC, tmp_path)
    stray = tmp_path / "azure/ea-enrollment-87654321/costs.csv"
    stray.write_text("Date,Cost\n")
    half_month = tmp_path / "azure/s1/e1/20240301-20240315/e1_0a.csv"
    half_month.parent.mkdir(parents=True)
    half_month.write_text("Date,Cost\n")
    renamed = tmp_path / EA / "march.csv"
    renamed.write_text("Date,Cost\n")
    parts = tmp_path / "azure/s2/e2/20240301-20240331/run-7"
    parts.mkdir(parents=True)
    (parts / "part_0_0001.csv.gz").write_bytes(b"x")
    touch(tmp_path / EA_NEW, SETTLED - timedelta(minutes=5))
    rows = {r.key: r for r in account_landing(landing_of(tmp_path), RULES, SETTLED)}
    assert {k: r.status for k, r in rows.items()} == {
        MCA: "loaded",
        EA_NEW: "waiting",
        EA_OLD: "loaded",  # the month's settled run while the newer one settles
        f"{EA}/march.csv": "not_understood",
        "azure/ea-enrollment-87654321/costs.csv": "not_understood",
        PARTNER: "loaded",
        "azure/s1/e1/20240301-20240315/e1_0a.csv": "not_understood",
        "azure/s2/e2/20240301-20240331/run-7/part_0_0001.csv.gz": "waiting",
    }
    assert rows["azure/ea-enrollment-87654321/costs.csv"].reason == (
        "not in an Azure export layout: expected a classic export file "
        "(azure/<directory>/<export>/<YYYYMMDD-YYYYMMDD>/<export>_<guid>.csv) or an export run "
        "(azure/<scope>/<export>/<YYYYMMDD-YYYYMMDD>/<runId>/part_*.{csv.gz,parquet} with the "
        "run's manifest.json beside them)"
    )
    assert rows[f"{EA}/march.csv"].reason.startswith(
        f"not a classic export file: expected acme-ea-daily-actual_<guid>.csv directly in {EA}/"
    )
    assert rows["azure/s1/e1/20240301-20240315/e1_0a.csv"].reason.startswith(
        "date folder 20240301-20240315 does not span one calendar month"
    )
    assert rows[EA_NEW].reason == (
        "classic export file still settling: loaded once unchanged for 60 minutes, at "
        "2024-03-05T00:55:00+00:00 (deliveries.settle_minutes)"
    )
    assert rows["azure/s2/e2/20240301-20240331/run-7/part_0_0001.csv.gz"].reason == (
        "run run-7 has no manifest.json yet (Azure writes it after the data files); loaded once "
        "it arrives"
    )


def test_landing_accounted_for_warns_about_a_csv_outside_the_layout(pipeline):
    copy_case(CLASSIC, pipeline.landing)
    stray = pipeline.landing / "azure/ea-enrollment-87654321/costs.csv"
    stray.write_text("Date,Cost\n")
    result = pipeline.materialize("2024-03-01", "2024-03-03", assets=["raw/azure_cost"])
    assert result.success, failure_messages(result)
    assert failed_checks(result) == ["raw/azure_cost:landing_accounted_for"]
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name == "landing_accounted_for"
    ]
    assert evaluation.description.startswith(
        f"1 object(s) under azure/ are not understood; e.g. {stray}: not in an Azure export layout"
    )
    assert (
        evaluation.metadata["objects_loaded"].value,
        evaluation.metadata["objects_superseded"].value,
        evaluation.metadata["objects_not_understood"].value,
    ) == (3, 1, 1)
    assert pipeline.query("SELECT sum(CostInBillingCurrency) FROM raw.azure_cost") == [
        (Decimal("71.268000000000"),)
    ]


def test_a_month_whose_only_files_are_settling_fails_saying_when(pipeline, tmp_path):
    """A settle time longer than the files' age (any mtime: 10^9 minutes is ~1900 years), so the
    only EA files of the month are waiting: the load fails and says when the first one settles."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        default_rules_path().read_text().replace("  settle_minutes: 60", "  settle_minutes: 1e9")
    )
    pipeline.config_path = str(rules)
    copy_case(CLASSIC, pipeline.landing)
    for other in (MCA, PARTNER):
        (pipeline.landing / other).unlink()
    result = pipeline.materialize("2024-03-01", assets=["raw/azure_cost"])
    assert not result.success
    settles = datetime(2024, 3, 3, 5, 12, 41, tzinfo=UTC) + timedelta(minutes=1e9)
    assert (
        "No Azure export run covers 2024-03 under "
        f"{pipeline.landing / 'azure'} (expected azure/<scope>/<export>/20240301-20240331/"
        "<runId>/manifest.json, or a classic export file azure/<directory>/<export>/"
        "20240301-20240331/<export>_<guid>.csv). 2 classic file(s) still settling, the first at "
        f"{settles.isoformat()} (deliveries.settle_minutes): they are loaded then."
    ) in failure_messages(result)
