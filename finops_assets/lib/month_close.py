"""Closing a month: an immutable, versioned journal snapshot, and adjustments for what changed.

``closed/<period>/v<n>/`` holds ``journal.csv`` (in the ERP's column layout), ``journal.parquet``
(the canonical columns) and ``control.json`` (row count, debit and credit per currency, the
files' sha256, the inputs' state). Nothing in them depends on the clock, so closing an unchanged
month again produces the same bytes, and is a no-op: the existing version is verified and kept.

A closed month is never edited (DOMAIN §10: ERPs freeze closed periods). When its facts change
later (a restatement, a credit, a rule fix), closing the next open month posts the difference as
``adjustment`` lines there, each referencing the closed version: Σ adjustment lines = current −
closed − already posted, per line key and currency, to the cent. Re-closing the changed month
itself is refused unless a new version is asked for (``new_version=True``): the old version's
files stay as they were.

Journal lines are per cost center, GL account, team, department, provider, charge category and
currency: a debit (or a credit, for a negative amount) to the expense line, balanced per provider
and currency by one line on the offset account (the accrued cloud cost payable). Amounts are
rounded to the currency's subunit by largest remainder, so the rounded lines add up to the
rounded total of the period. Nothing here imports Dagster.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from finops_assets.lib.reconciliation import subunit

KEY_COLUMNS = (
    "cost_center",
    "gl_account",
    "team",
    "department",
    "ProviderName",
    "ChargeCategory",
    "BillingCurrency",
)
JOURNAL_COLUMNS = (
    "line_id",
    "posting_date",
    "period",
    "line_type",
    "cost_center",
    "gl_account",
    "team",
    "department",
    "provider",
    "charge_category",
    "currency",
    "debit",
    "credit",
    "reference",
    "description",
)
JOURNAL_SCHEMA = pa.schema(
    [
        (c, pa.date32() if c == "posting_date" else pa.string())
        if c not in ("debit", "credit")
        else (c, pa.decimal128(38, 4))
        for c in JOURNAL_COLUMNS
    ]
)


class CloseRefused(RuntimeError):
    """The month cannot be closed (or re-closed) as asked; the message says why and what to do."""


@dataclass(frozen=True)
class JournalLayout:
    """How the ERP wants the CSV: canonical column → its header (order kept), and date format."""

    columns: Mapping[str, str] = field(default_factory=lambda: {c: c for c in JOURNAL_COLUMNS})
    date_format: str = "%Y-%m-%d"
    offset_account: str = "2100"
    name: str = "generic"


@dataclass(frozen=True)
class Closed:
    period: str
    version: int
    folder: Path
    sha256: Mapping[str, str]
    rows: int
    changed: bool  # False: an unchanged re-close kept the existing version
    adjustments: int


def period_days(period: str) -> tuple[date, date]:
    first = date.fromisoformat(f"{period}-01")
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, following - timedelta(days=1)


def round_lines(amounts: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Round to the currency's subunit so that Σ rounded = the rounded Σ (largest remainder)."""
    unit = subunit(currency)
    target = sum(amounts, Decimal(0)).quantize(unit)
    floors = [a.quantize(unit, rounding=ROUND_FLOOR) for a in amounts]
    left = int(((target - sum(floors, Decimal(0))) / unit).to_integral_value())
    order = sorted(range(len(amounts)), key=lambda i: (-(amounts[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += unit
    return floors


def line_key(row: Mapping) -> tuple[str, ...]:
    return tuple(str(row[c]) for c in KEY_COLUMNS)


def rounded_amounts(rows: Sequence[Mapping]) -> dict[tuple[str, ...], Decimal]:
    """Per line key, the amount in whole subunits (rounded per currency by largest remainder)."""
    by_key: dict[tuple[str, ...], Decimal] = {}
    for row in rows:
        key = line_key(row)
        by_key[key] = by_key.get(key, Decimal(0)) + Decimal(row["amount"])
    out: dict[tuple[str, ...], Decimal] = {}
    for currency in sorted({k[-1] for k in by_key}):
        keys = sorted(k for k in by_key if k[-1] == currency)
        for key, amount in zip(keys, round_lines([by_key[k] for k in keys], currency), strict=True):
            out[key] = amount
    return out


def _line_id(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def journal_lines(
    period: str,
    amounts: Mapping[tuple[str, ...], Decimal],
    adjustments: Mapping[tuple[str, str, tuple[str, ...]], Decimal],
    layout: JournalLayout,
) -> list[dict]:
    """Expense lines of the period, adjustment lines for closed periods, and the offset lines
    balancing each provider and currency. ``adjustments`` is keyed by (closed period, version
    reference, line key)."""
    posting = period_days(period)[1]
    lines: list[dict] = []

    def add(kind: str, key: tuple[str, ...], amount: Decimal, reference: str, text: str) -> None:
        if amount == 0:
            return
        cost_center, gl, team, department, provider, category, currency = key
        lines.append(
            {
                "line_id": _line_id(period, kind, reference, *key),
                "posting_date": posting,
                "period": period,
                "line_type": kind,
                "cost_center": cost_center,
                "gl_account": gl,
                "team": team,
                "department": department,
                "provider": provider,
                "charge_category": category,
                "currency": currency,
                "debit": amount if amount > 0 else Decimal(0),
                "credit": -amount if amount < 0 else Decimal(0),
                "reference": reference,
                "description": text,
            }
        )

    for key in sorted(amounts):
        add("charge", key, amounts[key], f"cloud cost {period}", f"{key[4]} {key[5]} {period}")
    for closed_period, reference, key in sorted(adjustments):
        add(
            "adjustment",
            key,
            adjustments[(closed_period, reference, key)],
            reference,
            f"change to closed {closed_period} ({reference})",
        )
    offsets: dict[tuple[str, str], Decimal] = {}
    for line in lines:
        pair = (line["provider"], line["currency"])
        offsets[pair] = offsets.get(pair, Decimal(0)) + line["debit"] - line["credit"]
    for (provider, currency), net in sorted(offsets.items()):
        key = ("", layout.offset_account, "", "", provider, "", currency)
        add("offset", key, -net, f"cloud cost {period}", f"accrued {provider} cost {period}")
    return lines


def journal_bytes(lines: Sequence[dict], layout: JournalLayout) -> tuple[bytes, bytes]:
    """The CSV (ERP layout) and Parquet (canonical) bytes of a journal; deterministic."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(layout.columns.values()))
    for line in lines:
        row = []
        for column in layout.columns:
            value = line[column]
            if isinstance(value, date):
                value = value.strftime(layout.date_format)
            elif isinstance(value, Decimal):
                value = f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value)
            row.append(value)
        writer.writerow(row)
    table = pa.Table.from_pylist(
        [{**line, "debit": line["debit"], "credit": line["credit"]} for line in lines],
        schema=JOURNAL_SCHEMA,
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", write_statistics=False)
    return out.getvalue().encode(), sink.getvalue()


def versions(root: Path, period: str) -> list[int]:
    folder = root / period
    if not folder.is_dir():
        return []
    return sorted(
        int(p.name[1:]) for p in folder.iterdir() if p.name[:1] == "v" and p.name[1:].isdigit()
    )


def read_journal(root: Path, period: str, version: int) -> list[dict]:
    return pq.read_table(root / period / f"v{version}" / "journal.parquet").to_pylist()


def closed_periods(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and versions(root, p.name))


def pending_adjustments(
    root: Path, period: str, current_amounts: Callable[[str], Mapping[tuple[str, ...], Decimal]]
) -> dict[tuple[str, str, tuple[str, ...]], Decimal]:
    """For each month closed before ``period``: current − closed − already posted, per key."""
    posted: dict[tuple[str, tuple[str, ...]], Decimal] = {}
    closed = [p for p in closed_periods(root) if p < period]
    for later in closed_periods(root):
        if later >= period:
            continue
        for line in read_journal(root, later, versions(root, later)[-1]):
            if line["line_type"] == "adjustment":
                # reference: closed/<period>/v<n>; a later version of that month supersedes it
                reference, key = line["reference"], _key_of(line)
                posted[(reference, key)] = (
                    posted.get((reference, key), Decimal(0)) + line["debit"] - line["credit"]
                )
    out: dict[tuple[str, str, tuple[str, ...]], Decimal] = {}
    for c in closed:
        version = versions(root, c)[-1]
        reference = f"closed/{c}/v{version}"
        was: dict[tuple[str, ...], Decimal] = {}
        for line in read_journal(root, c, version):
            if line["line_type"] == "charge":
                key = _key_of(line)
                was[key] = was.get(key, Decimal(0)) + line["debit"] - line["credit"]
        now = current_amounts(c)
        for key in sorted(set(was) | set(now) | {k for (r, k) in posted if r == reference}):
            diff = (
                now.get(key, Decimal(0))
                - was.get(key, Decimal(0))
                - posted.get((reference, key), Decimal(0))
            )
            if diff:
                out[(c, reference, key)] = diff
    return out


def _key_of(line: Mapping) -> tuple[str, ...]:
    return (
        line["cost_center"],
        line["gl_account"],
        line["team"],
        line["department"],
        line["provider"],
        line["charge_category"],
        line["currency"],
    )


def close_month(
    root: Path,
    period: str,
    amounts: Mapping[tuple[str, ...], Decimal],
    adjustments: Mapping[tuple[str, str, tuple[str, ...]], Decimal],
    layout: JournalLayout,
    inputs: Mapping,
    *,
    new_version: bool = False,
) -> Closed:
    """Write (or verify) the snapshot of ``period``. ``inputs`` (the reconciliation statuses, the
    basis, the deliveries) goes into control.json as it is: it must not hold wall-clock times."""
    lines = journal_lines(period, amounts, adjustments, layout)
    csv_bytes, parquet_bytes = journal_bytes(lines, layout)
    totals: dict[str, dict[str, str]] = {}
    for line in lines:
        t = totals.setdefault(line["currency"], {"debit": Decimal(0), "credit": Decimal(0)})
        t["debit"] += line["debit"]
        t["credit"] += line["credit"]
    control = {
        "period": period,
        "rows": len(lines),
        "erp_layout": layout.name,
        "totals": {c: {k: f"{v:.2f}" for k, v in t.items()} for c, t in sorted(totals.items())},
        "adjustment_lines": sum(1 for line in lines if line["line_type"] == "adjustment"),
        "sha256": {
            "journal.csv": hashlib.sha256(csv_bytes).hexdigest(),
            "journal.parquet": hashlib.sha256(parquet_bytes).hexdigest(),
        },
        "inputs": inputs,
    }
    existing = versions(root, period)
    if existing:
        latest = existing[-1]
        folder = root / period / f"v{latest}"
        control["version"] = latest
        same = (folder / "journal.csv").read_bytes() == csv_bytes and (
            folder / "journal.parquet"
        ).read_bytes() == parquet_bytes
        if same:
            return Closed(period, latest, folder, control["sha256"], len(lines), False, 0)
        if not new_version:
            raise CloseRefused(
                f"{period} is closed as v{latest} ({folder}) and its figures have changed since. "
                "Closed files are never rewritten: close the open month to post the difference "
                f"as adjustment lines referencing closed/{period}/v{latest}, or close {period} "
                f"again as v{latest + 1} with --new-version (v{latest} stays as it is)."
            )
    version = (existing[-1] + 1) if existing else 1
    control["version"] = version
    folder = root / period / f"v{version}"
    staging = root / period / f".v{version}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    (staging / "journal.csv").write_bytes(csv_bytes)
    (staging / "journal.parquet").write_bytes(parquet_bytes)
    (staging / "control.json").write_text(json.dumps(control, indent=2, sort_keys=True) + "\n")
    for path in staging.iterdir():
        path.chmod(0o444)
    os.rename(staging, folder)  # atomic: a reader sees no version or a whole one
    return Closed(
        period,
        version,
        folder,
        control["sha256"],
        len(lines),
        True,
        control["adjustment_lines"],
    )
