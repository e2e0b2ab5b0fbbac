"""Closing months through the close_month job on two generated months of FOCUS exports: the
journal ties to the warehouse, re-closing is byte-identical, a later change to a closed month is
posted as adjustments in the next one and the closed files never change."""

import hashlib
import json
from datetime import date
from decimal import Decimal

import duckdb
import pytest
import yaml
from aiosmtpd.controller import Controller

from finops_assets.definitions import build_defs
from finops_assets.lib.rules import default_rules_path
from finops_assets.samples.focus import generate_sample_exports
from finops_assets.settings import Settings
from finops_assets_tests.alerts.test_alerts_sensor import Mailbox, free_port
from finops_assets_tests.conftest import failure_messages, load_once


def deliver_two_months(landing):
    # January and February, plus 1 March so February's last day is settled (settle_days 1).
    generate_sample_exports(landing, date(2025, 1, 1), 60, 60, 5)


@pytest.fixture(scope="module")
def two_months_once(tmp_path_factory):
    return load_once(
        tmp_path_factory.mktemp("two_months"), deliver_two_months, "2025-01-01", "2025-03-01"
    )


@pytest.fixture
def two_months(pipeline, two_months_once):
    return pipeline.restore(two_months_once)


def close(pipeline, period, new_version=False):
    settings = Settings(
        landing_url=str(pipeline.landing),
        warehouse=pipeline.warehouse,
        start_date="2023-01-01",
        closed_dir=str(pipeline.landing.parent / "closed"),
        config_path=pipeline.config_path,
    )
    job = build_defs(settings).resolve_job_def("close_month")
    return job.execute_in_process(
        instance=pipeline.instance,
        partition_key=f"{period}-01",
        run_config={"ops": {"finance__month_close": {"config": {"new_version": new_version}}}},
        raise_on_error=False,
    )


def files(pipeline, period, version=1):
    folder = pipeline.landing.parent / "closed" / period / f"v{version}"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def control(pipeline, period, version=1):
    path = pipeline.landing.parent / "closed" / period / f"v{version}" / "control.json"
    return json.loads(path.read_text())


def warehouse_month(pipeline, month):
    """Σ EffectiveCost of the charge month per currency, rounded to the cent: the journal's net."""
    return {
        currency: f"{amount:.2f}"
        for currency, amount in pipeline.query(
            "SELECT BillingCurrency, round(sum(EffectiveCost), 2) FROM core.allocated_costs "
            "WHERE strftime(charge_date, '%Y-%m') = ? GROUP BY 1 ORDER BY 1",
            [month],
        )
    }


def test_close_ties_to_the_warehouse_and_recloses_byte_identical(two_months):
    result = close(two_months, "2025-01")
    assert result.success, failure_messages(result)
    journal = control(two_months, "2025-01")
    # Every charge line is a debit (or a credit, for negative cost) and the offset lines balance
    # them: per currency, debit − credit of the charge lines = the warehouse's month.
    lines = two_months.query(
        f"SELECT currency, sum(debit) - sum(credit) FROM "
        f"'{two_months.landing.parent}/closed/2025-01/v1/journal.parquet' "
        "WHERE line_type = 'charge' GROUP BY 1 ORDER BY 1"
    )
    assert {c: f"{v:.2f}" for c, v in lines} == warehouse_month(two_months, "2025-01")
    assert all(t["debit"] == t["credit"] for t in journal["totals"].values())
    assert journal["sha256"]["journal.csv"] == files(two_months, "2025-01")["journal.csv"]
    before = files(two_months, "2025-01")

    again = close(two_months, "2025-01")
    assert again.success, failure_messages(again)
    assert files(two_months, "2025-01") == before
    [event] = [
        e
        for e in again.get_asset_materialization_events()
        if e.materialization.asset_key.path == ["finance", "month_close"]
    ]
    assert event.materialization.metadata["changed"].value is False


def test_a_change_after_close_is_posted_as_adjustments_in_the_next_month(two_months):
    assert close(two_months, "2025-01").success
    january = files(two_months, "2025-01")
    # A restated charge of January: one row of cost 12.34 more (a late credit reversed, say).
    with duckdb.connect(two_months.warehouse) as con:
        con.execute(
            "UPDATE core.allocated_costs SET EffectiveCost = EffectiveCost + 12.34 WHERE rowid = "
            "(SELECT min(rowid) FROM core.allocated_costs WHERE charge_date = DATE '2025-01-15' "
            "AND BillingCurrency = 'USD')"
        ).fetchall()
    refused = close(two_months, "2025-01")
    assert not refused.success
    assert "2025-01 is closed as v1" in failure_messages(refused)

    result = close(two_months, "2025-02")
    assert result.success, failure_messages(result)
    adjustments = two_months.query(
        f"SELECT reference, currency, sum(debit) - sum(credit) FROM "
        f"'{two_months.landing.parent}/closed/2025-02/v1/journal.parquet' "
        "WHERE line_type = 'adjustment' GROUP BY ALL"
    )
    assert adjustments == [("closed/2025-01/v1", "USD", Decimal("12.3400"))]
    assert files(two_months, "2025-01") == january

    # Closing January again as a new version keeps v1 as it was.
    v2 = close(two_months, "2025-01", new_version=True)
    assert v2.success, failure_messages(v2)
    assert files(two_months, "2025-01") == january
    assert control(two_months, "2025-01", 2)["version"] == 2


def test_an_incomplete_month_is_refused(two_months):
    # March has one delivered day: not complete.
    result = close(two_months, "2025-03")
    assert not result.success
    assert "close-month 2025-03 refused: 2025-03 is not complete: 2025-03-01 still waits on" in (
        failure_messages(result)
    )


def test_the_cli_closes_and_refuses_with_reasons(two_months, monkeypatch, capsys):
    from finops_assets.cli import main

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("FINOPS_LANDING_URL", str(two_months.landing))
    monkeypatch.setenv("FINOPS_WAREHOUSE", two_months.warehouse)
    monkeypatch.setenv("FINOPS_START_DATE", "2023-01-01")
    monkeypatch.setenv("FINOPS_CLOSED_DIR", str(two_months.landing.parent / "closed"))
    assert main(["close-month", "2025-01"]) == 0
    sha = files(two_months, "2025-01")["journal.csv"]
    out = capsys.readouterr().out
    assert f"2025-01 closed as v1: {two_months.landing.parent}/closed/2025-01/v1" in out
    assert f"report: {two_months.landing.parent}/reports/2025-01.html" in out
    assert main(["close-month", "2025-01"]) == 0
    assert "2025-01 unchanged, kept v1" in capsys.readouterr().out
    assert files(two_months, "2025-01")["journal.csv"] == sha
    assert main(["close-month", "2025-03"]) == 1
    assert "2025-03 is not complete" in capsys.readouterr().err


def test_the_report_shows_the_warehouse_figures_in_chromium(two_months, tmp_path):
    import os
    import shutil

    from finops_assets.lib.report_html import report_figures_index

    result = close(two_months, "2025-01")
    assert result.success, failure_messages(result)
    page = (two_months.landing.parent / "reports" / "2025-01.html").read_text()
    index = report_figures_index(page)
    assert "closed v1" in page
    # Every department total and the month's total per currency equal core.allocated_costs.
    for department, currency, cost in two_months.query(
        "SELECT department, BillingCurrency, sum(EffectiveCost) FROM core.allocated_costs "
        "WHERE charge_date BETWEEN '2025-01-01' AND '2025-01-31' GROUP BY ALL"
    ):
        assert Decimal(index[f"spend|{department}|{currency}|cost"]) == cost
    for currency, total in two_months.query(
        "SELECT BillingCurrency, sum(EffectiveCost) FROM core.allocated_costs "
        "WHERE charge_date BETWEEN '2025-01-01' AND '2025-01-31' GROUP BY ALL"
    ):
        assert Decimal(index[f"summary|{currency}|total"]) == total
    for provider, account, invoice, currency, facts in two_months.query(
        "SELECT ProviderName, BillingAccountId, InvoiceId, BillingCurrency, facts_pre_tax "
        "FROM finance.invoice_reconciliation WHERE billing_period = '2025-01-01'"
    ):
        key = "/".join(
            p.replace("%", "%25").replace("/", "%2F").replace("|", "%7C")
            for p in (provider, account, invoice or "(none)")
        )
        assert Decimal(index[f"invoices|{key}|{currency}|facts_pre_tax"]) == facts

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(chromium):
        pytest.skip("no Chromium here")
    from playwright.sync_api import sync_playwright

    shot = tmp_path / "report-2025-01.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        view = browser.new_page(viewport={"width": 1100, "height": 900})
        view.goto((two_months.landing.parent / "reports" / "2025-01.html").as_uri())
        shown = view.eval_on_selector_all(
            "[data-figure]", "els => els.filter(e => e.getBoundingClientRect().width > 0).length"
        )
        view.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shown == page.count("data-figure=")
    assert shot.stat().st_size > 20_000
    if os.environ.get("FINOPS_SCREENSHOT_DIR"):
        shutil.copy(shot, os.environ["FINOPS_SCREENSHOT_DIR"])


def report_metadata(result):
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.path == ["finance", "monthly_report"]
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_the_report_is_mailed_to_the_alert_targets_once_per_version(two_months, tmp_path):
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        rules = yaml.safe_load(default_rules_path().read_text())
        mail = {"smtp_host": "127.0.0.1", "starttls": False, "sender": "finops@example.com"}
        rules["alerts"]["email"] = [
            {**mail, "name": "finance", "smtp_port": box.port, "recipients": ["cfo@example.com"]},
            {**mail, "name": "controller", "smtp_port": free_port(), "recipients": ["c@x.io"]},
        ]
        rules["finance"] = {"send_report_to": ["finance", "controller"]}
        path = tmp_path / "rules.yaml"
        path.write_text(yaml.safe_dump(rules))
        two_months.config_path = str(path)

        result = close(two_months, "2025-01")
        assert result.success, failure_messages(result)
        meta = report_metadata(result)
        assert meta["report_sent_to"] == ["finance"]
        # The dead server is named; the close itself stands (the report is on disk).
        [error] = meta["report_delivery_errors"]
        assert error.startswith("email 'controller' (127.0.0.1:")
        [message] = box.messages
        assert message["Subject"] == "[FinOps report] Monthly cost report 2025-01 (closed v1)"
        assert message["To"] == "cfo@example.com"
        [attachment] = list(message.iter_attachments())
        assert attachment.get_filename() == "finops-report-2025-01.html"
        page = two_months.landing.parent / "reports" / "2025-01.html"
        assert attachment.get_content_charset() == "utf-8"
        assert attachment.get_payload(decode=True) == page.read_bytes()
        assert attachment.get_content() == page.read_text(encoding="utf-8")
        totals = "; ".join(
            f"{Decimal(a):,.2f} {c}" for c, a in warehouse_month(two_months, "2025-01").items()
        )
        assert f"Totals: {totals}." in message.get_body(("plain",)).get_content()

        # Re-closing the unchanged month mails nobody twice; the failed target is tried again.
        again = close(two_months, "2025-01")
        assert again.success, failure_messages(again)
        meta = report_metadata(again)
        assert meta["report_sent_to"] == ["finance"]
        assert len(meta["report_delivery_errors"]) == 1
        assert len(box.messages) == 1
    finally:
        controller.stop()


def test_send_report_to_must_name_an_alert_target(two_months, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(default_rules_path().read_text() + "\nfinance:\n  send_report_to: [cfo]\n")
    two_months.config_path = str(path)
    with pytest.raises(Exception, match="'cfo' is not an alert target"):
        close(two_months, "2025-01")
