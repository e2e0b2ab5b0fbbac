"""lib/month_close: byte-identical re-close, refused rewrites, adjustments for a restatement."""

import hashlib
import json
from decimal import Decimal

import pytest

from finops_assets.lib import month_close as mc

D = Decimal
LAYOUT = mc.JournalLayout()
INPUTS = {"basis": "EffectiveCost", "reconciliation": {"match": 2}}


def key(team, currency="USD", gl="6100"):
    return ("cc-1", gl, team, "eng", "AWS", "Usage", currency)


JAN = {key("payments"): D("100.10"), key("search"): D("-5.00"), key("payments", "EUR"): D("7.77")}


def hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_round_lines_keep_the_rounded_total():
    amounts = [D("0.333333"), D("0.333333"), D("0.333334")]
    assert mc.round_lines(amounts, "USD") == [D("0.33"), D("0.33"), D("0.34")]
    assert sum(mc.round_lines(amounts, "USD")) == D("1.00")
    assert mc.round_lines([D("10.4"), D("10.4")], "JPY") == [D("11"), D("10")]


def test_close_writes_a_balanced_journal_and_recloses_byte_identical(tmp_path):
    first = mc.close_month(tmp_path, "2025-01", JAN, {}, LAYOUT, INPUTS)
    assert (first.version, first.changed, first.rows) == (1, True, 5)  # 3 lines + 2 offsets
    control = json.loads((first.folder / "control.json").read_text())
    # USD: debit 100.10, credit 5.00 (search) + 95.10 (offset); EUR: 7.77 both ways.
    assert control["totals"] == {
        "EUR": {"credit": "7.77", "debit": "7.77"},
        "USD": {"credit": "100.10", "debit": "100.10"},
    }
    assert control["sha256"]["journal.csv"] == hashes(first.folder)["journal.csv"]
    before = hashes(first.folder)
    again = mc.close_month(tmp_path, "2025-01", dict(reversed(JAN.items())), {}, LAYOUT, INPUTS)
    assert (again.version, again.changed) == (1, False)
    assert hashes(first.folder) == before
    assert mc.versions(tmp_path, "2025-01") == [1]


def test_a_restatement_is_posted_in_the_open_month_and_the_closed_files_stay(tmp_path):
    closed = mc.close_month(tmp_path, "2025-01", JAN, {}, LAYOUT, INPUTS)
    before = hashes(closed.folder)
    restated = {**JAN, key("payments"): D("112.45"), key("ads"): D("3.00")}
    with pytest.raises(mc.CloseRefused, match="2025-01 is closed as v1"):
        mc.close_month(tmp_path, "2025-01", restated, {}, LAYOUT, INPUTS)
    pending = mc.pending_adjustments(tmp_path, "2025-02", lambda period: restated)
    # restated − closed: payments +12.35, ads +3.00; the rest unchanged.
    assert pending == {
        ("2025-01", "closed/2025-01/v1", key("ads")): D("3.00"),
        ("2025-01", "closed/2025-01/v1", key("payments")): D("12.35"),
    }
    feb = mc.close_month(tmp_path, "2025-02", {key("payments"): D("50")}, pending, LAYOUT, INPUTS)
    lines = mc.read_journal(tmp_path, "2025-02", feb.version)
    adjustments = [line for line in lines if line["line_type"] == "adjustment"]
    assert sum(a["debit"] - a["credit"] for a in adjustments) == D("15.35")
    assert {a["reference"] for a in adjustments} == {"closed/2025-01/v1"}
    assert hashes(closed.folder) == before
    # Posted once: the next month owes nothing more for January.
    current = {"2025-01": restated, "2025-02": {key("payments"): D("50")}}
    assert mc.pending_adjustments(tmp_path, "2025-03", current.get) == {}
    # A second restatement posts only its own difference.
    again = {**restated, key("ads"): D("1.00")}
    assert mc.pending_adjustments(
        tmp_path, "2025-03", lambda p: again if p == "2025-01" else {key("payments"): D("50")}
    ) == {("2025-01", "closed/2025-01/v1", key("ads")): D("-2.00")}


def test_a_new_version_keeps_the_old_one(tmp_path):
    v1 = mc.close_month(tmp_path, "2025-01", JAN, {}, LAYOUT, INPUTS)
    before = hashes(v1.folder)
    v2 = mc.close_month(
        tmp_path, "2025-01", {**JAN, key("ads"): D("1")}, {}, LAYOUT, INPUTS, new_version=True
    )
    assert (v2.version, mc.versions(tmp_path, "2025-01")) == (2, [1, 2])
    assert hashes(v1.folder) == before


def test_erp_layout_renames_and_orders_columns(tmp_path):
    layout = mc.JournalLayout(
        columns={
            "posting_date": "Date",
            "gl_account": "Account",
            "debit": "Debit",
            "credit": "Credit",
            "currency": "Currency",
            "line_id": "Memo",
        },
        date_format="%d/%m/%Y",
        name="netsuite",
    )
    closed = mc.close_month(tmp_path, "2025-01", {key("payments"): D("1.5")}, {}, layout, INPUTS)
    rows = (closed.folder / "journal.csv").read_text().splitlines()
    assert rows[0] == "Date,Account,Debit,Credit,Currency,Memo"
    assert rows[1].startswith("31/01/2025,6100,1.50,0.00,USD,")
    assert rows[2].startswith("31/01/2025,2100,0.00,1.50,USD,")
