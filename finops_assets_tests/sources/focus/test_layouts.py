"""FOCUS files in any folder layout under focus/<provider>/<dataset>/ (no manifest): what is a
delivery, which days are complete, which files are superseded, and the account of every object
under focus/. Fixture: fixtures/layouts/focus_layouts (expected.json has the totals)."""

import json
import os
import shutil
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from finops_assets.defs.sources.focus.deliveries import (
    account_landing,
    folder_period,
    scan_focus,
    survey_focus,
)
from finops_assets.lib.rules import load_rules
from finops_assets.resources.landing import LocalLandingZone
from finops_assets_tests.conftest import failed_checks, failure_messages, load_once
from finops_assets_tests.paths import LAYOUTS

CASE = LAYOUTS / "focus_layouts"
EXPECTED = json.loads((CASE / "expected.json").read_text())
WRITTEN = datetime(2024, 3, 3, 6, tzinfo=UTC)  # every file's mtime in these tests
SETTLED = datetime(2024, 3, 4, tzinfo=UTC)  # expected.json settle_reference_utc
WRITING = WRITTEN + timedelta(minutes=10)  # within deliveries.settle_minutes (60)
RULES = load_rules(None)
COMPLETE_DAYS = ("2024-02-29", "2024-03-01")
ORACLE = "focus/oracle/FOCUS Reports/2024/03/01/0001000001234567-00001.csv.gz"
FABRIKAM = "focus/fabrikam/billing/20240301-20240401/fabrikam-focus-1.0.csv"


def touch(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def copy_case(landing: Path, when: datetime = WRITTEN) -> None:
    shutil.copytree(CASE / "focus", landing / "focus", dirs_exist_ok=True)
    for path in (landing / "focus").rglob("*"):
        if path.is_file():
            touch(path, when)


def zone(root: Path) -> LocalLandingZone:
    return LocalLandingZone(root=str(root))


def expected_by_day(basis: str, days, datasets=None) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = {}
    for name, dataset in EXPECTED["datasets"].items():
        if datasets is not None and name not in datasets:
            continue
        for day, amounts in dataset["totals"][basis]["by_day"].items():
            if day in days:
                for currency, amount in amounts.items():
                    out[(day, currency)] = out.get((day, currency), Decimal(0)) + Decimal(amount)
    return out


def totals(pipeline, table: str, column: str, days) -> dict[tuple[str, str], Decimal]:
    rows = pipeline.query(
        f"SELECT charge_date::VARCHAR, BillingCurrency, sum({column}) FROM {table} "
        "WHERE charge_date::VARCHAR IN (SELECT unnest(?)) GROUP BY 1, 2",
        [list(days)],
    )
    return {
        (day, currency): Decimal(amount).quantize(Decimal("0.0001"))
        for day, currency, amount in rows
    }


@pytest.fixture(scope="module")
def loaded_once(tmp_path_factory):
    """The six datasets' complete days loaded through every asset once."""
    return load_once(tmp_path_factory.mktemp("focus_layouts"), copy_case, *COMPLETE_DAYS)


@pytest.fixture
def loaded(pipeline, loaded_once):
    return pipeline.restore(loaded_once)


def test_folder_periods():
    assert folder_period([]) == ("", False)
    assert folder_period(["exports"]) == ("", False)
    assert folder_period(["2024-03"]) == ("2024-03", False)
    assert folder_period(["billing_period=2024-03", "run-1"]) == ("2024-03", False)
    assert folder_period(["year=2024", "month=3"]) == ("2024-03", False)
    assert folder_period(["20240301-20240401"]) == ("20240301-20240401", False)
    assert folder_period(["2024-03-02"]) == ("2024-03-02", True)
    assert folder_period(["2024", "03", "01"]) == ("2024-03-01", True)
    assert folder_period(["2024", "13", "01"]) == ("", False)


def test_complete_days_of_every_layout_load_to_the_cent(loaded):
    """raw.focus and core.cost_facts per day and currency equal expected.json for the complete
    days (all six datasets), and so does every dataset on its own."""
    for basis, column in (("billed", "BilledCost"), ("effective", "EffectiveCost")):
        expected = expected_by_day(basis, COMPLETE_DAYS)
        assert expected == {
            (day, currency): Decimal(amount)
            for day in COMPLETE_DAYS
            for currency, amount in EXPECTED["totals"][basis]["by_day"][day].items()
        }
        assert totals(loaded, "raw.focus", column, COMPLETE_DAYS) == expected
        assert totals(loaded, "core.cost_facts", column, COMPLETE_DAYS) == expected
        for name in EXPECTED["datasets"]:
            rows = loaded.query(
                f"SELECT charge_date::VARCHAR, BillingCurrency, sum({column}) FROM raw.focus "
                "WHERE x_Dataset = ? AND charge_date <= '2024-03-01' GROUP BY 1, 2",
                [name],
            )
            assert {
                (d, c): Decimal(a).quantize(Decimal("0.0001")) for d, c, a in rows
            } == expected_by_day(basis, COMPLETE_DAYS, {name}), name


def test_incomplete_days_are_refused_and_the_rest_loads(loaded):
    """2024-03-02: Recency (globex) and x_DatasetCompletionStatus (initech) say not complete;
    once both datasets are gone, the other four load to the cent."""
    result = loaded.materialize("2024-03-02", assets=["raw/focus"])
    assert not result.success
    message = failure_messages(result)
    assert "FOCUS Recency metadata does not mark these days complete: 2024-03-02 of " in message
    assert "globex/cost-and-usage" in message and "recency-5f0c8a2e" in message
    assert loaded.query("SELECT count(*) FROM raw.focus WHERE charge_date = '2024-03-02'") == [(0,)]
    shutil.rmtree(loaded.landing / "focus/globex")
    result = loaded.materialize("2024-03-02", assets=["raw/focus"])
    assert not result.success
    assert "x_DatasetCompletionStatus marks these days Incomplete: 2024-03-02 in " in (
        failure_messages(result)
    )
    assert "initech_focus.csv (1 row(s))" in failure_messages(result)
    shutil.rmtree(loaded.landing / "focus/initech")
    result = loaded.materialize("2024-03-02", assets=["raw/focus", "core/cost_facts"])
    assert result.success, failure_messages(result)
    others = {"contoso/cost-usage", "fabrikam/billing", "oracle/FOCUS Reports"}
    expected = expected_by_day("billed", ("2024-03-02",), others)
    assert expected == {
        ("2024-03-02", "EUR"): Decimal("1.2500"),
        ("2024-03-02", "USD"): Decimal("-0.0880"),
    }
    assert totals(loaded, "core.cost_facts", "BilledCost", ("2024-03-02",)) == expected


def test_scan_with_settled_files(tmp_path):
    copy_case(tmp_path)
    candidates = {(c.stream, c.period): c for c in scan_focus(zone(tmp_path), RULES, SETTLED)}
    assert sorted(candidates) == [
        ("focus/acme-saas/costs", "2024-02"),
        ("focus/acme-saas/costs", "2024-03"),
        ("focus/contoso/cost-usage", "2024-03"),
        ("focus/fabrikam/billing", "2024-03"),
        ("focus/globex/cost-and-usage", "2024-03"),
        ("focus/initech/daily", "2024-03"),
        ("focus/oracle/FOCUS Reports", "2024-03"),
    ]
    assert all(c.complete for c in candidates.values())
    oracle = candidates[("focus/oracle/FOCUS Reports", "2024-03")]
    assert (oracle.files, oracle.incomplete_days, oracle.delivery_id[:6]) == (2, {}, "files-")
    assert len(candidates[("focus/acme-saas/costs", "2024-02")].days) == 29
    initech = candidates[("focus/initech/daily", "2024-03")].incomplete_days
    assert sorted(initech) == [date(2024, 3, 2)]
    assert "x_DatasetCompletionStatus is Incomplete in 1 row(s)" in initech[date(2024, 3, 2)]
    globex = candidates[("focus/globex/cost-and-usage", "2024-03")].incomplete_days
    assert date(2024, 3, 1) not in globex
    assert "Recency marks 2024-03-02 00:00..00:00Z not complete" in globex[date(2024, 3, 2)]
    assert len(globex) == 30  # 03-03..03-31 have no complete time sector either
    # The same files scanned again: the same delivery ids (fingerprints of keys, sizes, mtimes).
    again = {
        (c.stream, c.period): c.delivery_id for c in scan_focus(zone(tmp_path), RULES, SETTLED)
    }
    assert again == {k: c.delivery_id for k, c in candidates.items()}


def test_scan_while_files_are_still_changing(tmp_path):
    copy_case(tmp_path)
    candidates = {(c.stream, c.period): c for c in scan_focus(zone(tmp_path), RULES, WRITING)}
    waiting = sorted(k for k, c in candidates.items() if not c.complete)
    assert waiting == [
        ("focus/acme-saas/costs", "2024-02"),
        ("focus/acme-saas/costs", "2024-03"),
        ("focus/contoso/cost-usage", "2024-03"),
        ("focus/fabrikam/billing", "2024-03"),
        ("focus/oracle/FOCUS Reports", "2024-03"),
    ]
    assert candidates[("focus/oracle/FOCUS Reports", "2024-03")].reason == (
        "2 file(s) modified 2024-03-03 06:00Z, less than deliveries.settle_minutes (60) ago; "
        "loads once unchanged until 2024-03-03 07:00Z (no manifest, x_DatasetCompletionStatus "
        "or Recency says it is complete)"
    )
    # The status column and Recency say which days are complete: no settle time needed.
    assert candidates[("focus/initech/daily", "2024-03")].complete
    assert candidates[("focus/globex/cost-and-usage", "2024-03")].complete


def test_a_newer_write_supersedes_older_files_of_its_folder_period(tmp_path):
    copy_case(tmp_path)
    # Flat: a month-to-date rewrite of March in a new file a day later replaces the old file.
    costs = tmp_path / "focus/acme-saas/costs"
    shutil.copy(costs / "acme_focus_2024-03.parquet", costs / "acme_focus_2024-03_v2.parquet")
    touch(costs / "acme_focus_2024-03_v2.parquet", WRITTEN + timedelta(days=1))
    # Month folder: a second part written 5 minutes after the first is part of the same write.
    contoso = tmp_path / "focus/contoso/cost-usage/2024-03"
    shutil.copy(contoso / "part-00000.parquet", contoso / "part-00001.parquet")
    touch(contoso / "part-00001.parquet", WRITTEN + timedelta(minutes=5))
    surveyed = survey_focus(zone(tmp_path), RULES, SETTLED + timedelta(days=1))
    files = {
        (d.dataset, d.billing_period): [f.key.rsplit("/", 1)[1] for f in d.files]
        for d in surveyed.complete
    }
    assert files[("costs", "2024-03")] == ["acme_focus_2024-03_v2.parquet"]
    assert files[("costs", "2024-02")] == ["acme_focus_2024-02.csv"]
    assert files[("cost-usage", "2024-03")] == ["part-00000.parquet", "part-00001.parquet"]
    assert files[("FOCUS Reports", "2024-03")] == ["0001000001234567-00001.csv.gz"] * 2
    status = {a.key: a.status for a in surveyed.accounted}
    assert status["focus/acme-saas/costs/acme_focus_2024-03.parquet"] == "superseded"
    assert status["focus/acme-saas/costs/acme_focus_2024-03_v2.parquet"] == "loaded"


def test_every_object_is_accounted_for(tmp_path):
    copy_case(tmp_path)
    rows = account_landing(zone(tmp_path), RULES, SETTLED)
    assert {r.status for r in rows} == {"loaded", "metadata"}
    assert [r.key for r in rows if r.status == "metadata"] == [
        EXPECTED["datasets"]["globex/cost-and-usage"]["recency_file"]
    ]
    assert len(rows) == 9


def test_files_not_understood_are_listed_with_the_layout_expected(tmp_path):
    copy_case(tmp_path)
    focus = tmp_path / "focus"
    (focus / "README.txt").write_text("drop files here")
    (focus / "acme-saas" / "stray.csv").write_text("a,b\n1,2\n")
    (focus / "contoso/cost-usage/2024-03/notes.txt").write_text("x")
    (focus / "contoso/cost-usage/2024-03/summary.csv").write_text("Month,Total\n2024-03,31.25\n")
    # FOCUS 1.4 Invoice Detail is a dataset of its own: its place is invoices/, and it says so.
    detail = focus / "contoso/invoice-detail/2024-03/invoice-detail.csv"
    detail.parent.mkdir(parents=True)
    detail.write_text(
        "BillingAccountId,BillingPeriodStart,InvoiceId,InvoiceIssuerName,InvoiceIssueStatus,"
        "ChargeCategory,BilledCost,BillingCurrency\n"
        "C-1,2024-03-01T00:00:00Z,INV-7,Contoso,Issued,Usage,31.25,USD\n"
    )
    broken = focus / "fabrikam/billing/20240301-20240401/fabrikam-broken.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    for path in focus.rglob("*"):
        if path.is_file():
            touch(path, WRITTEN)
    reasons = {
        r.key: r.reason
        for r in account_landing(zone(tmp_path), RULES, SETTLED)
        if r.status == "not_understood"
    }
    layout = "expected focus/<provider>/<dataset>/<FOCUS files, flat or in any folders below"
    assert reasons["focus/README.txt"].startswith(
        "a file directly under focus/ belongs to no dataset; " + layout
    )
    assert reasons["focus/acme-saas/stray.csv"].startswith(
        "a file directly under focus/acme-saas/ belongs to no dataset; " + layout
    )
    assert reasons["focus/contoso/cost-usage/2024-03/notes.txt"].startswith(
        "neither a FOCUS data file (.parquet, .csv, .csv.gz) nor metadata"
    )
    assert (
        "not a FOCUS file, it has no BillingPeriodStart and no ChargePeriodStart column"
        in (reasons["focus/contoso/cost-usage/2024-03/summary.csv"])
    )
    assert (
        "fabrikam-broken.parquet: cannot read Parquet file"
        in (reasons["focus/fabrikam/billing/20240301-20240401/fabrikam-broken.parquet"])
    )
    assert reasons["focus/contoso/invoice-detail/2024-03/invoice-detail.csv"].endswith(
        "a FOCUS Invoice Detail file (it has InvoiceIssueStatus and InvoiceIssuerName but no "
        "ChargePeriodStart), not cost and usage rows. Fix: deliver it under the landing zone's "
        "invoices/ folder (finance.invoices_prefix), where finance/invoices reads it for the "
        "month close."
    )
    assert len(reasons) == 6


def test_manifest_datasets_keep_their_rules(tmp_path):
    """A dataset with our manifests: a folder without one waits, files outside delivery folders
    or not listed are not understood."""
    prefix = tmp_path / "focus/aws/aws-focus/billing_period=2025-01"
    (prefix / "d1").mkdir(parents=True)
    (prefix / "d2").mkdir()
    shutil.copy(
        CASE / "focus/contoso/cost-usage/2024-03/part-00000.parquet",
        prefix / "d1/part-00000.parquet",
    )
    shutil.copy(prefix / "d1/part-00000.parquet", prefix / "d1/extra.parquet")
    shutil.copy(prefix / "d1/part-00000.parquet", prefix / "d2/part-00000.parquet")
    (prefix / "d1/manifest.json").write_text(json.dumps({"files": ["part-00000.parquet"]}))
    shutil.copy(prefix / "d1/part-00000.parquet", tmp_path / "focus/aws/aws-focus/loose.parquet")
    accounted = {
        a.key.split("aws-focus/")[1]: a for a in account_landing(zone(tmp_path), RULES, SETTLED)
    }
    assert {k: a.status for k, a in accounted.items()} == {
        "billing_period=2025-01/d1/extra.parquet": "not_understood",
        "billing_period=2025-01/d1/manifest.json": "metadata",
        "billing_period=2025-01/d1/part-00000.parquet": "loaded",
        "billing_period=2025-01/d2/part-00000.parquet": "waiting",
        "loose.parquet": "not_understood",
    }
    assert accounted["billing_period=2025-01/d2/part-00000.parquet"].reason == (
        "1 file(s) but no manifest.json yet (the producer writes it last)"
    )
    assert (
        "not listed in its manifest.json"
        in accounted["billing_period=2025-01/d1/extra.parquet"].reason
    )
    assert "this file is in no delivery folder" in accounted["loose.parquet"].reason


def test_a_file_not_understood_fails_the_landing_check(loaded):
    (loaded.landing / "focus/README.txt").write_text("drop files here")
    result = loaded.materialize("2024-03-01", assets=["raw/focus"])
    assert result.success, failure_messages(result)
    assert failed_checks(result) == ["raw/focus:landing_accounted_for"]
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "landing_accounted_for"
    ]
    assert evaluation.description.startswith(
        f"1 object(s) under focus/ are not understood; e.g. {loaded.landing / 'focus/README.txt'}: "
        "a file directly under focus/ belongs to no dataset"
    )
    assert evaluation.metadata["objects_loaded"].value == 8


def test_a_broken_file_fails_the_load_naming_it(loaded):
    before = loaded.query("SELECT count(*), sum(BilledCost) FROM raw.focus")
    path = loaded.landing / ORACLE
    path.write_bytes(b"\x1f\x8b not gzip")
    touch(path, WRITTEN)
    result = loaded.materialize("2024-03-01", assets=["raw/focus"])
    assert not result.success
    assert f"{path}: cannot read CSV file" in failure_messages(result)
    # Its folder names March, whose bill may correct February (correction_months 1): February
    # is refused too; the loaded rows stay.
    result = loaded.materialize("2024-02-29", assets=["raw/focus"])
    assert f"{path}: cannot read CSV file" in failure_messages(result)
    assert loaded.query("SELECT count(*), sum(BilledCost) FROM raw.focus") == before


def test_a_delivery_that_claims_days_it_does_not_load_warns(pipeline):
    """The files changed between the survey and the load (here: rewritten in place with the
    same size and mtime, so the survey's read of them is stale): a claimed day has no rows of
    the delivery, and the run says so loudly."""
    loaded = pipeline
    copy_case(loaded.landing)
    shutil.rmtree(loaded.landing / "focus/globex")  # 2024-03-02 incomplete in these two
    shutil.rmtree(loaded.landing / "focus/initech")
    path = loaded.landing / FABRIKAM
    scan_focus(zone(loaded.landing), RULES, SETTLED)  # the survey reads the files
    text = path.read_text()
    # The 2024-03-02 row now starts on 2024-03-03 (ChargePeriodEnd, ChargePeriodStart).
    moved = text.replace(
        '"2024-03-03 00:00:00","2024-03-02 00:00:00"', '"2024-03-03 00:00:00","2024-03-03 00:00:00"'
    )
    assert moved != text and len(moved) == len(text)
    path.write_text(moved)
    touch(path, WRITTEN)
    result = loaded.materialize("2024-03-01", "2024-03-02", assets=["raw/focus"])
    assert result.success, failure_messages(result)
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["deliveries_with_unloaded_days"].value == 1
    text = metadata["unloaded_claimed_days"].value
    assert text.startswith("Delivery files-")
    assert "of fabrikam/billing (billing period 2024-03) claims 1 charge day(s) its files " in text
    assert "stored none of its rows for them: 2024-03-02. Files: " in text
    warnings = [
        e.user_message
        for e in loaded.instance.all_logs(result.run_id)
        if "claims 1 charge day(s)" in e.user_message
    ]
    assert warnings == [text]
