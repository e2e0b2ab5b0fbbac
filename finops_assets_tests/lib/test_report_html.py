"""The monthly cost report page (lib/report_html.py): derived figures are exact and per currency,
text is escaped, the page is self-contained and deterministic, and in a real browser every figure
is visible and reads back as its data-value."""

from __future__ import annotations

import dataclasses
import html
import os
import re
import shutil
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from finops_assets.lib import report_html as rh
from finops_assets.lib.report_html import (
    AnomalyRow,
    BudgetRow,
    CommitmentRow,
    InvoiceMatchRow,
    ReportFigures,
    ServiceRow,
    SpendRow,
    UntaggedRow,
    render_report,
    report_figures_index,
)

D = Decimal


def figures() -> ReportFigures:
    """Two currencies; a negative team (credits), a new team (no previous month), a team name
    with HTML-special characters and one with a slash; an anomaly; a budget forecast over 100%;
    invoices in every status."""
    return ReportFigures(
        period="2025-01",
        state="closed v1 (sha256 ab12…)",
        basis="EffectiveCost",
        previous_period="2024-12",
        spend=(
            SpendRow("Engineering", "Payments", "USD", D("1200.50"), D("1000.00")),
            SpendRow("Engineering", "R&D <Core>", "USD", D("800.25"), D("900.25")),
            SpendRow("Marketing", "Campaigns", "USD", D("300.00"), None),
            SpendRow("Research", "Sandbox", "USD", D("-150.00"), D("20.00")),
            SpendRow("Engineering", "Payments", "EUR", D("500.00"), D("400.00")),
            SpendRow("Finance", "Ops/FP&A", "EUR", D("10.125"), None),
        ),
        services=(
            ServiceRow("AWS", "EC2", "USD", D("900.00"), D("800.00")),
            ServiceRow("AWS", "S3 <Glacier>", "USD", D("200.00"), D("250.00")),
            ServiceRow("Microsoft", "Virtual Machines", "EUR", D("450.00"), None),
        ),
        untagged=(
            UntaggedRow("AWS", "USD", D("2000.00"), D("150.00"), D("50.00")),
            UntaggedRow("Google Cloud", "USD", D("150.75"), D("0"), D("0")),
            UntaggedRow("Microsoft", "EUR", D("510.125"), D("51.0125"), D("0")),
        ),
        commitments=(
            CommitmentRow("AWS", "sp-1 Savings Plan", "USD", D("300"), D("270"), D("30")),
            CommitmentRow("AWS", "ri-2 Reserved", "USD", D("100"), D("40"), D("60")),
        ),
        anomalies=(
            AnomalyRow(
                "an-1",
                "daily by service",
                "AWS/EC2",
                "USD",
                "spike",
                "open",
                date(2025, 1, 10),
                date(2025, 1, 12),
                D("123.456"),
                "usage type BoxUsage:m5.large in us-east-1 +80%",
            ),
        ),
        budgets=(
            BudgetRow(
                "Platform <prod>",
                "ops team",
                "USD",
                D("1000"),
                D("800.25"),
                D("80.025"),
                D("1150.00"),
                D("115.0"),
                "at risk",
            ),
            BudgetRow(
                "Marketing", "cmo", "EUR", D("500"), D("100"), D("20"), None, None, "on track"
            ),
        ),
        invoices=(
            InvoiceMatchRow(
                "AWS", "123456789012", "INV-1", "USD", D("1000.00"), D("1000.00"), D("0.00"),
                D("5.00"), "match", "",
            ),
            InvoiceMatchRow(
                "AWS", "123456789012", "INV-2", "USD", D("500.00"), D("500.03"), D("0.03"),
                D("2.50"), "within rounding", "rounding rows 0.03",
            ),
            InvoiceMatchRow(
                "Google Cloud", "0A1B2C", "G-1", "EUR", D("300.00"), D("310.50"), D("10.50"),
                D("1.50"), "mismatch", "late usage (used in an earlier month) 10.50",
            ),
            InvoiceMatchRow(
                "Microsoft", "ea-42", "M-9", "USD", D("200.00"), D("195.00"), D("-5.00"),
                D("1.00"), "invoice open", "",
            ),
            InvoiceMatchRow(
                "AWS", "999999999999", "*", "USD", None, D("42.00"), None, None, "no invoice",
                "no invoice for this account and month yet",
            ),
            InvoiceMatchRow(
                "AWS", "123456789012", "INV-0", "USD", D("10.00"), D("0"), D("-10.00"), D("1.00"),
                "voided", "",
            ),
        ),
        footer="warehouse finops.duckdb · 31 deliveries · control file control/2025-01.json",
    )  # fmt: skip


@pytest.fixture(scope="module")
def page() -> str:
    return render_report(figures())


@pytest.fixture(scope="module")
def index(page: str) -> dict[str, str]:
    return report_figures_index(page)


def shown(page: str, key: str) -> list[str]:
    """The visible text of every element carrying this data-figure."""
    pattern = rf'data-figure="{re.escape(html.escape(key))}" data-value="[^"]*">([^<]*)<'
    return [html.unescape(t) for t in re.findall(pattern, page)]


def test_currency_totals_are_exact_and_never_mixed(index):
    assert index["summary|USD|total"] == "2150.75"  # 1200.50 + 800.25 + 300.00 - 150.00
    assert index["summary|USD|previous_total"] == "1920.25"  # 1000.00 + 900.25 + 20.00
    assert index["summary|USD|change"] == "230.50"
    assert index["summary|USD|change_pct"] == "12.00364535867725556568155188"
    assert index["summary|EUR|total"] == "510.125"  # 500.00 + 10.125
    assert index["summary|EUR|previous_total"] == "400.00"  # the new team counts as zero
    assert index["summary|EUR|change"] == "110.125"
    assert index["summary|EUR|change_pct"] == "27.53125"
    assert index["spend|Engineering|USD|cost"] == "2000.75"
    assert index["spend|Engineering|EUR|cost"] == "500.00"
    # No figure anywhere is a sum across currencies.
    assert "2660.875" not in index.values()  # USD 2150.75 + EUR 510.125
    assert "2500.75" not in index.values()  # Engineering USD 2000.75 + EUR 500.00
    currencies = {
        key.split("|")[-2] for key in index if key.startswith("summary|") and "invoices" not in key
    }
    assert currencies == {"USD", "EUR"}


def test_department_and_team_month_over_month(page, index):
    assert index["spend|Engineering|USD|previous_cost"] == "1900.25"
    assert index["spend|Engineering|USD|change"] == "100.50"
    assert index["spend|Engineering|USD|change_pct"] == "5.288777792395737402973292988"
    assert index["spend|Engineering/Payments|USD|change_pct"] == "20.05"  # 200.50 / 1000.00
    # Credits make a team negative; its change and % keep their sign.
    assert index["spend|Research/Sandbox|USD|cost"] == "-150.00"
    assert index["spend|Research/Sandbox|USD|change"] == "-170.00"
    assert index["spend|Research/Sandbox|USD|change_pct"] == "-850"
    assert shown(page, "spend|Research/Sandbox|USD|cost") == ["-150.00 USD"]
    assert shown(page, "spend|Research/Sandbox|USD|change") == ["-170.00 USD"]
    assert shown(page, "spend|Research/Sandbox|USD|change_pct") == ["-850.0%"]
    # Formatted: thousands separators, 2 decimals, currency code, explicit sign on changes.
    assert shown(page, "summary|USD|total") == ["2,150.75 USD", "2,150.75 USD"]  # summary, foot
    assert shown(page, "summary|USD|change") == ["+230.50 USD", "+230.50 USD"]
    assert shown(page, "summary|USD|change_pct") == ["+12.0%", "+12.0%"]
    assert shown(page, "spend|Engineering|USD|cost") == ["2,000.75 USD", "2,000.75 USD"]  # chart
    assert shown(page, "summary|EUR|total") == ["510.13 EUR", "510.13 EUR"]  # half-up
    assert shown(page, "spend|Finance/Ops%2FFP&A|EUR|cost") == ["10.13 EUR"]


def test_no_previous_month_reads_new_and_has_no_change_figure(page, index):
    assert index["spend|Marketing/Campaigns|USD|cost"] == "300.00"
    for key in ("Marketing/Campaigns", "Marketing", "Finance/Ops%2FFP&A", "Finance"):
        currency = "EUR" if key.startswith("Finance") else "USD"
        for field in ("previous_cost", "change", "change_pct"):
            assert f"spend|{key}|{currency}|{field}" not in index
    row = re.search(r"<th scope=\"row\">Campaigns</th>(.*?)</tr>", page).group(1)
    assert re.findall(r">([^<]+)</td>", row) == ["300.00 USD", "—", "new", "—"]
    assert "services|Microsoft/Virtual Machines|EUR|change" not in index
    assert index["services|AWS/S3 <Glacier>|USD|change_pct"] == "-20"  # -50.00 / 250.00


def test_shares_utilization_budgets_and_invoices(page, index):
    assert index["untagged|AWS|USD|untagged_pct"] == "7.5"  # 150.00 / 2000.00
    assert index["untagged|AWS|USD|unallocated_pct"] == "2.5"
    assert index["untagged|Google Cloud|USD|untagged_pct"] == "0"
    assert index["untagged|Microsoft|EUR|untagged_pct"] == "10.0"
    assert index["summary|USD|untagged_pct"] == "6.974311286760432407299779147"  # 150 / 2150.75
    assert index["summary|USD|unallocated_pct"] == "2.324770428920144135766593049"
    assert index["summary|EUR|untagged_pct"] == "10.0"
    assert index["commitments|AWS/sp-1 Savings Plan|USD|utilization_pct"] == "90"
    assert index["commitments|AWS/ri-2 Reserved|USD|utilization_pct"] == "40"
    assert index["anomalies|an-1|USD|impact"] == "123.456"
    assert shown(page, "anomalies|an-1|USD|impact") == ["+123.46 USD"]
    assert index["budgets|Platform <prod>|USD|forecast_pct"] == "115.0"
    assert index["budgets|Platform <prod>|USD|actual_pct"] == "80.025"
    assert shown(page, "budgets|Platform <prod>|USD|actual_pct") == ["80.0%"]
    assert "budgets|Marketing|EUR|forecast" not in index
    assert index["invoices|AWS/123456789012/INV-2|USD|delta"] == "0.03"
    assert index["invoices|Microsoft/ea-42/M-9|USD|delta"] == "-5.00"
    assert index["invoices|AWS/999999999999/*|USD|facts_pre_tax"] == "42.00"
    assert "invoices|AWS/999999999999/*|USD|delta" not in index
    counts = {s: index[f"summary|invoices/{s}|count"] for s in rh.INVOICE_STATUSES}
    assert counts == {
        "match": "1",
        "within rounding": "1",
        "mismatch": "1",
        "invoice open": "1",
        "no invoice": "1",
    }
    assert index["summary|invoices/voided|count"] == "1"
    badges = dict((s, k) for k, s in re.findall(r'class="badge badge-(\w+)">([^<]+)<', page))
    assert badges["match"] == "good"
    assert badges["within rounding"] == "good"
    assert badges["mismatch"] == "bad"
    assert badges["invoice open"] == "warn"
    assert badges["no invoice"] == "warn"
    assert badges["voided"] == "neutral"


def test_charts_scale_per_currency_and_draw_credits_leftwards(page):
    usd = re.search(r'<title id="chart-\d+">Cost by department, USD</title>(.*?)</svg>', page)
    bars = usd.group(1)
    # USD: +2000.75 and -150.00 span 2150.75 over a 340-wide plot; the axis sits 23.7 in.
    assert '<line x1="213.7"' in bars
    assert re.search(r'Research: -150.00 USD</title>.*?<rect x="190.0" [^>]*width="23.7"', bars)
    assert re.search(
        r'Engineering: 2,000.75 USD</title>.*?<rect x="213.7" [^>]*width="316.3"', bars
    )
    eur = re.search(r'<title id="chart-\d+">Cost by department, EUR</title>(.*?)</svg>', page)
    # EUR is scaled to its own largest bar: 500.00 fills the plot.
    assert re.search(
        r'Engineering: 500.00 EUR</title>.*?<rect x="190.0" [^>]*width="340.0"', eur.group(1)
    )
    budget = re.search(
        r"Platform &lt;prod&gt;: actual 80.0%, forecast 115.0%.*?</svg>", page
    ).group(0)
    # Forecast 115% stretches the scale: the 100% marker moves left of the forecast's end.
    assert 'y="16" width="192.0"' in budget
    assert '<line x1="169.0"' in budget
    assert (
        page.count('role="img"') == 11
    )  # 2 spend, 2 services, 3 untagged, 2 commitments, 2 budgets


def test_text_is_escaped(page, index):
    assert "R&amp;D &lt;Core&gt;" in page
    assert "Platform &lt;prod&gt;" in page
    assert "S3 &lt;Glacier&gt;" in page
    assert "<Core>" not in page and "<prod>" not in page and "<Glacier>" not in page
    assert index["spend|Engineering/R&D <Core>|USD|cost"] == "800.25"
    # A slash inside a name is encoded in the key, so it cannot pass for a team boundary.
    assert index["spend|Finance/Ops%2FFP&A|EUR|cost"] == "10.125"


def test_self_contained_and_deterministic(page):
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    assert "<style>" in page.split("</head>")[0]
    for ref in ("http://", "https://", "src=", "<script", "url(", "@import", "<link"):
        assert ref not in page
    assert render_report(figures()) == page
    shuffled = dataclasses.replace(
        figures(),
        spend=tuple(reversed(figures().spend)),
        untagged=tuple(reversed(figures().untagged)),
        invoices=tuple(reversed(figures().invoices)),
        commitments=tuple(reversed(figures().commitments)),
        budgets=tuple(reversed(figures().budgets)),
    )
    assert render_report(shuffled) == page


def test_missing_and_empty_insights():
    missing = render_report(dataclasses.replace(figures(), anomalies=None, budgets=None))
    assert missing.count("Insights not materialized for this month.") == 2
    assert "budgets|" not in "".join(report_figures_index(missing))
    empty = render_report(
        dataclasses.replace(figures(), anomalies=(), budgets=(), commitments=(), invoices=())
    )
    assert "No open anomalies." in empty
    assert "No budgets defined." in empty
    assert "No commitments (reservations or savings plans) this month." in empty
    assert "No invoices to match." in empty


def test_duplicate_rows_and_conflicting_figures_are_refused():
    f = figures()
    with pytest.raises(ValueError, match="appears twice"):
        render_report(dataclasses.replace(f, spend=(*f.spend, f.spend[0])))
    with pytest.raises(ValueError, match="two values"):
        report_figures_index(
            '<td data-figure="a|USD|cost" data-value="1"></td>'
            '<td data-figure="a|USD|cost" data-value="2"></td>'
        )


def parse_shown(key: str, text: str) -> Decimal:
    """The number a visible figure shows, checking its unit on the way."""
    field = key.rsplit("|", 1)[1]
    if field == "count":
        return Decimal(text.replace(",", ""))
    if field.endswith("_pct"):
        assert text.endswith("%"), (key, text)
        return Decimal(text[:-1].replace(",", "").lstrip("+"))
    currency = key.split("|")[-2]
    assert text.endswith(f" {currency}"), (key, text)
    return Decimal(text[: -len(currency) - 1].replace(",", "").lstrip("+"))


def rounded(key: str, value: str) -> Decimal:
    field = key.rsplit("|", 1)[1]
    places = "1" if field == "count" else "0.1" if field.endswith("_pct") else "0.01"
    return Decimal(value).quantize(Decimal(places), rounding=ROUND_HALF_UP)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_page_in_chromium(tmp_path: Path, page: str):
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium binary")
    from playwright.sync_api import sync_playwright

    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    png = tmp_path / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1100, "height": 900})
            tab.goto(report.as_uri())
            read = tab.eval_on_selector_all(
                "[data-figure]",
                """els => els.map(e => {
                    const r = e.getBoundingClientRect();
                    return {key: e.dataset.figure, value: e.dataset.value,
                            text: e.textContent.trim(), w: r.width, h: r.height,
                            visible: e.checkVisibility()};
                })""",
            )
            charts = tab.eval_on_selector_all(
                "svg",
                "els => els.map(e => [e.getBoundingClientRect().width, "
                "e.getBoundingClientRect().height])",
            )
            tab.screenshot(path=str(png), full_page=True)
            # Printed on A4 (210 mm less 22 mm of margins at 96 dpi) nothing runs off the page.
            tab.emulate_media(media="print")
            tab.set_viewport_size({"width": 710, "height": 1000})
            overflow = tab.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
        finally:
            browser.close()
    assert len(read) == page.count("data-figure=") == 128
    assert {r["key"]: r["value"] for r in read} == report_figures_index(page)
    for r in read:
        assert r["visible"] and r["w"] > 0 and r["h"] > 0, r
        assert parse_shown(r["key"], r["text"]) == rounded(r["key"], r["value"]), r
    assert len(charts) == 11
    assert all(w > 0 and h > 0 for w, h in charts), charts
    assert overflow == 0
    assert png.stat().st_size > 10_000
    if os.environ.get("FINOPS_SCREENSHOT_DIR"):
        target = Path(os.environ["FINOPS_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(png, target / "report.png")
