"""Finance's monthly cost report as one self-contained HTML5 page.

Why a hand-written renderer: the page is mailed as an attachment, archived next to the closed
month and printed, so it must open offline in any browser or mail client. It therefore carries
its own ``<style>``, draws its charts as inline ``<svg>`` and references no URL, font, script or
image. Only the standard library is used (``html``, ``decimal``); nothing here imports Dagster or
reads the clock, so the same figures always give the same bytes.

Money is ``Decimal`` in one currency per row. Amounts of different currencies are never added:
every total, share and chart is per currency. Derived figures (department and currency totals,
month-over-month change and %, untagged shares, commitment utilization) are computed here in
``Decimal`` with a fixed 28-digit context.

Machine-checkable figures
-------------------------
Every figure shown on the page sits in an element carrying ``data-figure`` (what it is) and
``data-value`` (the exact, unrounded value as a plain decimal string, ``format(d, "f")``). The
visible text is the value rounded half-up: money to 2 decimals with thousands separators and the
currency code (``12,345.68 USD``); percentages to 1 decimal with ``%``; changes with an explicit
sign (``+1,234.00 USD``, ``-4.5%``; a change that rounds to zero has no sign); counts as
integers. ``report_figures_index`` reads them back, so tests and the pipeline can check the page
against the warehouse without scraping text.

``data-figure`` is ``|``-joined::

    <section>|<key>|<currency>|<field>    a figure of one row or group, in one currency
    <section>|<currency>|<field>          a currency-level figure (no key)
    <section>|<key>|<field>               a figure without a currency (counts)

``<key>`` is the row's identity, its parts joined by ``/``. In every part (and in the currency)
``%``, ``/`` and ``|`` are percent-encoded (``%25``, ``%2F``, ``%7C``), so a team called
``a/b`` cannot be confused with team ``b`` of department ``a``. Keys and fields per section:

- ``summary|<CUR>|total``, ``previous_total``, ``change``, ``change_pct``, ``untagged_pct``,
  ``unallocated_pct``; ``summary|invoices/<status>|count``.
- ``spend|<department>|<CUR>|...`` (department totals) and ``spend|<department>/<team>|<CUR>|...``
  with fields ``cost``, ``previous_cost``, ``change``, ``change_pct``.
- ``services|<provider>/<service>|<CUR>|...``: ``cost``, ``previous_cost``, ``change``,
  ``change_pct``.
- ``untagged|<provider>|<CUR>|...``: ``total_cost``, ``untagged_cost``, ``untagged_pct``,
  ``unallocated_cost``, ``unallocated_pct``.
- ``commitments|<provider>/<commitment>|<CUR>|...``: ``amortized_cost``, ``used_cost``,
  ``unused_cost``, ``utilization_pct`` (used / amortized).
- ``anomalies|<anomaly_id>|<CUR>|impact``.
- ``budgets|<budget>|<CUR>|...``: ``amount``, ``actual``, ``actual_pct``, ``forecast``,
  ``forecast_pct``.
- ``invoices|<provider>/<billing_account>/<invoice_id>|<CUR>|...``: ``invoice_pre_tax``,
  ``facts_pre_tax``, ``delta``, ``tolerance``.

Percentages (fields ending in ``_pct``) are in percent units: ``data-value="12.5"`` shows
``12.5%``. A figure that does not exist (no previous month, a division by zero, an invoice not
received) is shown as ``new`` or ``—`` and has no ``data-figure``. The same ``data-figure`` may
appear more than once (a chart label repeats a table cell); every occurrence carries the same
value, which ``report_figures_index`` enforces. Dates and axis labels (the ``100%`` marker) are
not figures.

Row order: currencies alphabetically; departments, teams, commitments and anomalies by size
(largest first) then name; services in the given order (already the top N); everything else by
its key.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext
from html.parser import HTMLParser

from finops_assets.lib.alerts import Alert, Attachment

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CENTS = Decimal("0.01")
TENTHS = Decimal("0.1")
# Fixed arithmetic so a caller's decimal context cannot change the page.
ARITHMETIC = Context(prec=28, rounding=ROUND_HALF_EVEN)

INVOICE_STATUSES = ("match", "within rounding", "mismatch", "invoice open", "no invoice")
INVOICE_BADGES = {
    "match": "good",
    "within rounding": "good",
    "mismatch": "bad",
    "invoice open": "warn",
    "no invoice": "warn",
}
BUDGET_BADGES = {"on track": "good", "at risk": "warn", "over budget": "bad"}
NOT_MATERIALIZED = "Insights not materialized for this month"


@dataclass(frozen=True)
class SpendRow:
    department: str
    team: str
    currency: str
    cost: Decimal
    previous_cost: Decimal | None  # None: the team had no cost in the previous month


@dataclass(frozen=True)
class ServiceRow:
    provider: str
    service: str
    currency: str
    cost: Decimal
    previous_cost: Decimal | None


@dataclass(frozen=True)
class UntaggedRow:
    provider: str
    currency: str
    total_cost: Decimal
    untagged_cost: Decimal
    unallocated_cost: Decimal


@dataclass(frozen=True)
class CommitmentRow:
    provider: str
    commitment: str
    currency: str
    amortized_cost: Decimal
    used_cost: Decimal
    unused_cost: Decimal


@dataclass(frozen=True)
class AnomalyRow:
    anomaly_id: str
    monitor: str
    series: str
    currency: str
    kind: str
    status: str
    start_date: date
    end_date: date
    impact: Decimal
    root_causes: str


@dataclass(frozen=True)
class BudgetRow:
    budget: str
    owner: str
    currency: str
    amount: Decimal
    actual: Decimal
    actual_pct: Decimal | None
    forecast: Decimal | None
    forecast_pct: Decimal | None
    status: str


@dataclass(frozen=True)
class InvoiceMatchRow:
    provider: str
    billing_account: str
    invoice_id: str
    currency: str
    invoice_pre_tax: Decimal | None
    facts_pre_tax: Decimal
    delta: Decimal | None
    tolerance: Decimal | None
    status: str
    explanation: str


@dataclass(frozen=True)
class ReportFigures:
    period: str  # "2025-01"
    state: str  # "closed v1 (sha256 ab12…)" or "open: complete through 2025-01-20"
    basis: str  # "EffectiveCost" or "BilledCost"
    previous_period: str  # "2024-12"
    spend: tuple[SpendRow, ...]
    services: tuple[ServiceRow, ...]  # already the top N, in order
    untagged: tuple[UntaggedRow, ...]
    commitments: tuple[CommitmentRow, ...]
    anomalies: tuple[AnomalyRow, ...] | None  # None: insights not materialized
    budgets: tuple[BudgetRow, ...] | None  # None: insights not materialized
    invoices: tuple[InvoiceMatchRow, ...]
    footer: str = ""  # provenance line (warehouse, deliveries, control file)


# ---------------------------------------------------------------------------------------------
# Arithmetic and formatting


def _sum(values: Iterable[Decimal]) -> Decimal:
    with localcontext(ARITHMETIC):
        total = ZERO
        for v in values:
            total += v
        return total


def _sum_previous(values: Sequence[Decimal | None]) -> Decimal | None:
    """A group's previous total: rows without a previous month count as zero (they are new), but
    a group where no row has one is new as a whole."""
    known = [v for v in values if v is not None]
    return _sum(known) if known else None


def _change(cost: Decimal, previous: Decimal | None) -> Decimal | None:
    if previous is None:
        return None
    with localcontext(ARITHMETIC):
        return cost - previous


def _pct(part: Decimal | None, whole: Decimal | None) -> Decimal | None:
    """part / whole in percent; None when either is missing or the whole is zero."""
    if part is None or whole is None or whole == 0:
        return None
    with localcontext(ARITHMETIC):
        return part * HUNDRED / whole


def _plain(value: Decimal) -> str:
    """The exact value without exponent notation (``0E-12`` becomes ``0.000000000000``)."""
    if value == 0:
        value = value.copy_abs()
    return format(value, "f")


def _rounded(value: Decimal, places: Decimal) -> Decimal:
    q = value.quantize(places, rounding=ROUND_HALF_UP, context=ARITHMETIC)
    return q.copy_abs() if q == 0 else q


def _sign(q: Decimal, signed: bool) -> str:
    return "+" if signed and q > 0 else ""


def format_money(value: Decimal, currency: str, signed: bool = False) -> str:
    """``12,345.68 USD``; with ``signed`` a positive change reads ``+12,345.68 USD``."""
    q = _rounded(value, CENTS)
    return f"{_sign(q, signed)}{q:,.2f} {currency}"


def format_pct(value: Decimal, signed: bool = False) -> str:
    q = _rounded(value, TENTHS)
    return f"{_sign(q, signed)}{q:,.1f}%"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _key_part(text: str) -> str:
    return text.replace("%", "%25").replace("/", "%2F").replace("|", "%7C")


def figure_key(section: str, key: Sequence[str], currency: str | None, field: str) -> str:
    """The ``data-figure`` of one figure (scheme in the module docstring)."""
    parts = [section]
    if key:
        parts.append("/".join(_key_part(k) for k in key))
    if currency is not None:
        parts.append(_key_part(currency))
    parts.append(field)
    return "|".join(parts)


@dataclass(frozen=True)
class _Figure:
    """One displayed figure: where it comes from, its exact value and its visible text."""

    key: str
    value: Decimal
    text: str

    def attrs(self) -> str:
        return f'data-figure="{_e(self.key)}" data-value="{_e(_plain(self.value))}"'


class _Figures:
    """Builds figures for one section and row, so call sites name only the field."""

    def __init__(self, section: str, key: Sequence[str], currency: str | None) -> None:
        self.section, self.key, self.currency = section, tuple(key), currency

    def _key(self, field: str) -> str:
        return figure_key(self.section, self.key, self.currency, field)

    def money(self, field: str, value: Decimal | None, signed: bool = False) -> _Figure | None:
        if value is None:
            return None
        return _Figure(self._key(field), value, format_money(value, self.currency or "", signed))

    def pct(self, field: str, value: Decimal | None, signed: bool = False) -> _Figure | None:
        if value is None:
            return None
        return _Figure(self._key(field), value, format_pct(value, signed))

    def count(self, field: str, value: int) -> _Figure:
        return _Figure(self._key(field), Decimal(value), f"{value:,d}")


def _td(fig: _Figure | None, missing: str = "—", extra_class: str = "") -> str:
    cls = f"num {extra_class}".strip()
    if fig is None:
        return f'<td class="{cls} na">{_e(missing)}</td>'
    return f'<td class="{cls}" {fig.attrs()}>{_e(fig.text)}</td>'


def _badge(status: str, kinds: dict[str, str]) -> str:
    kind = kinds.get(status, "neutral")
    return f'<span class="badge badge-{kind}">{_e(status)}</span>'


def _n(x: float) -> str:
    """An SVG coordinate, fixed to 1 decimal so the output is stable."""
    text = f"{x:.1f}"
    return "0.0" if text == "-0.0" else text


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Ids:
    """Deterministic element ids (SVG titles need them for aria-labelledby)."""

    def __init__(self) -> None:
        self._next = 0

    def __call__(self, prefix: str) -> str:
        self._next += 1
        return f"{prefix}-{self._next}"


# ---------------------------------------------------------------------------------------------
# Charts


@dataclass(frozen=True)
class _Bar:
    label: str
    figure: _Figure


BAR_COLOR, NEGATIVE_COLOR, TRACK_COLOR, AXIS_COLOR = "#2b5c9e", "#b3261e", "#e3e7ed", "#4a4f57"


def _bar_chart(ids: _Ids, title: str, bars: Sequence[_Bar]) -> str:
    """Horizontal bars from a zero axis: widths scaled to the largest bar of this chart (one
    currency), negative values (credits) drawn leftwards."""
    label_w, value_w, plot_w, row_h, pad = 190.0, 130.0, 340.0, 22.0, 6.0
    width = label_w + plot_w + value_w
    height = pad * 2 + row_h * max(len(bars), 1)
    values = [float(b.figure.value) for b in bars]
    max_pos = max([0.0, *values])
    max_neg = max([0.0, *(-v for v in values)])
    span = max_pos + max_neg
    axis = label_w + (plot_w * max_neg / span if span else 0.0)
    title_id = ids("chart")
    out = [
        f'<svg class="chart" role="img" aria-labelledby="{title_id}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" width="{_n(width)}" height="{_n(height)}">',
        f'<title id="{title_id}">{_e(title)}</title>',
    ]
    for i, (bar, v) in enumerate(zip(bars, values, strict=True)):
        y = pad + i * row_h
        w = plot_w * abs(v) / span if span else 0.0
        x = axis - w if v < 0 else axis
        color = NEGATIVE_COLOR if v < 0 else BAR_COLOR
        mid = y + row_h / 2 + 4
        out.append(
            f"<g><title>{_e(bar.label)}: {_e(bar.figure.text)}</title>"
            f'<text x="{_n(label_w - 8)}" y="{_n(mid)}" text-anchor="end" class="lbl">'
            f"{_e(_short(bar.label))}</text>"
            f'<rect x="{_n(x)}" y="{_n(y + 4)}" width="{_n(w)}" height="{_n(row_h - 8)}" '
            f'fill="{color}"/>'
            f'<text x="{_n(width - 4)}" y="{_n(mid)}" text-anchor="end" class="val" '
            f"{bar.figure.attrs()}>{_e(bar.figure.text)}</text></g>"
        )
    out.append(
        f'<line x1="{_n(axis)}" y1="{_n(pad - 2)}" x2="{_n(axis)}" y2="{_n(height - pad + 2)}" '
        f'stroke="{AXIS_COLOR}" stroke-width="1"/>'
    )
    out.append("</svg>")
    return "".join(out)


def _share_bars(ids: _Ids, title: str, shares: Sequence[tuple[Decimal | None, str]]) -> str:
    """Small 0–100% bars, one per share, on a grey track (values are clamped to the track)."""
    width, bar_h, gap = 120.0, 7.0, 3.0
    height = gap + len(shares) * (bar_h + gap)
    title_id = ids("bar")
    out = [
        f'<svg class="mini" role="img" aria-labelledby="{title_id}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" width="{_n(width)}" height="{_n(height)}">'
        f'<title id="{title_id}">{_e(title)}</title>'
    ]
    for i, (share, color) in enumerate(shares):
        y = gap + i * (bar_h + gap)
        out.append(
            f'<rect x="0" y="{_n(y)}" width="{_n(width)}" height="{_n(bar_h)}" '
            f'fill="{TRACK_COLOR}"/>'
        )
        if share is not None:
            w = width * min(max(float(share), 0.0), 100.0) / 100.0
            out.append(
                f'<rect x="0" y="{_n(y)}" width="{_n(w)}" height="{_n(bar_h)}" fill="{color}"/>'
            )
    out.append("</svg>")
    return "".join(out)


def _budget_bar(ids: _Ids, row: BudgetRow) -> str:
    """Actual (thick) and forecast (thin) % of the budget with a marker at 100%; the scale
    stretches past 100% when either figure does, so an overrun stays visible."""
    width, left, right = 200.0, 2.0, 6.0
    plot = width - left - right
    actual = max(float(row.actual_pct), 0.0) if row.actual_pct is not None else None
    forecast = max(float(row.forecast_pct), 0.0) if row.forecast_pct is not None else None
    top = max(100.0, actual or 0.0, forecast or 0.0)

    def x(pct: float) -> float:
        return left + plot * pct / top

    parts = []
    if row.actual_pct is not None:
        parts.append(f"actual {format_pct(row.actual_pct)}")
    if row.forecast_pct is not None:
        parts.append(f"forecast {format_pct(row.forecast_pct)}")
    title = f"{row.budget}: " + (", ".join(parts) or "no figures") + " of the budget"
    title_id = ids("budget")
    out = [
        f'<svg class="mini budget" role="img" aria-labelledby="{title_id}" viewBox="0 0 200 36" '
        f'width="200" height="36">'
        f'<title id="{title_id}">{_e(title)}</title>',
        f'<rect x="{_n(left)}" y="3" width="{_n(x(100.0) - left)}" height="10" '
        f'fill="{TRACK_COLOR}"/>',
    ]
    if actual is not None:
        color = NEGATIVE_COLOR if actual > 100 else BAR_COLOR
        out.append(
            f'<rect x="{_n(left)}" y="3" width="{_n(x(actual) - left)}" height="10" '
            f'fill="{color}"/>'
        )
    if forecast is not None:
        color = "#c9655c" if forecast > 100 else "#7f9fcc"
        out.append(
            f'<rect x="{_n(left)}" y="16" width="{_n(x(forecast) - left)}" height="5" '
            f'fill="{color}"/>'
        )
    marker = x(100.0)
    out.append(
        f'<line x1="{_n(marker)}" y1="0" x2="{_n(marker)}" y2="24" stroke="{AXIS_COLOR}" '
        f'stroke-width="1.5"/>'
        f'<text x="{_n(min(marker, width - 14))}" y="34" text-anchor="middle" class="axis">'
        f"100%</text></svg>"
    )
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Sections


def _group(rows: Iterable, currency=lambda r: r.currency) -> dict[str, list]:
    grouped: dict[str, list] = defaultdict(list)
    for r in rows:
        grouped[currency(r)].append(r)
    return {c: grouped[c] for c in sorted(grouped)}


def _unique(keys: Iterable[tuple], what: str) -> None:
    seen: set[tuple] = set()
    for k in keys:
        if k in seen:
            raise ValueError(f"{what}: {k!r} appears twice; each row must be unique")
        seen.add(k)


def _section(section_id: str, title: str, body: str, intro: str = "") -> str:
    lead = f'<p class="intro">{intro}</p>' if intro else ""
    return (
        f'<section id="{section_id}" aria-labelledby="{section_id}-h">'
        f'<h2 id="{section_id}-h">{_e(title)}</h2>{lead}{body}</section>'
    )


def _table(
    head: Sequence[tuple[str, bool]],
    body: Iterable[str],
    foot: str = "",
    widths: Sequence[int] = (),
) -> str:
    """A table whose numeric columns (``True`` in ``head``) are right-aligned. ``widths`` (% per
    column) fixes the layout, so the per-currency tables of one section line up."""
    cells = "".join(f'<th scope="col"{" class=num" if num else ""}>{_e(h)}</th>' for h, num in head)
    tfoot = f"<tfoot>{foot}</tfoot>" if foot else ""
    cols, cls = "", ""
    if widths:
        cols = "<colgroup>" + "".join(f'<col style="width:{w}%">' for w in widths) + "</colgroup>"
        cls = ' class="fixed"'
    return (
        f"<table{cls}>{cols}<thead><tr>{cells}</tr></thead><tbody>{''.join(body)}</tbody>"
        f"{tfoot}</table>"
    )


@dataclass(frozen=True)
class _Department:
    name: str
    currency: str
    cost: Decimal
    previous: Decimal | None
    teams: tuple[SpendRow, ...]


def _departments(rows: Sequence[SpendRow]) -> list[_Department]:
    by_dept: dict[str, list[SpendRow]] = defaultdict(list)
    for r in rows:
        by_dept[r.department].append(r)
    depts = []
    for name, teams in by_dept.items():
        teams.sort(key=lambda r: (-r.cost, r.team))
        depts.append(
            _Department(
                name,
                teams[0].currency,
                _sum(t.cost for t in teams),
                _sum_previous([t.previous_cost for t in teams]),
                tuple(teams),
            )
        )
    depts.sort(key=lambda d: (-d.cost, d.name))
    return depts


def _mom_cells(f: _Figures, cost: Decimal, previous: Decimal | None, prefix: str = "") -> str:
    """This month, previous month, change and % change; no previous month reads ``new``."""
    change = _change(cost, previous)
    return (
        _td(f.money(f"{prefix}cost", cost))
        + _td(f.money(f"previous_{prefix}cost", previous))
        + _td(f.money("change", change, signed=True), missing="new")
        + _td(f.pct("change_pct", _pct(change, previous), signed=True))
    )


MOM_HEAD = (("This month", True), ("Previous month", True), ("Change", True), ("Change %", True))
SERVICE_HEAD = (("Provider", False), ("Service", False), *MOM_HEAD)
SPEND_HEAD = (("Department / team", False), *MOM_HEAD)


def _summary(fig: ReportFigures) -> str:
    spend = _group(fig.spend)
    untagged = _group(fig.untagged)
    rows = []
    for cur in sorted(set(spend) | set(untagged)):
        f = _Figures("summary", (), cur)
        if cur in spend:
            total = _sum(r.cost for r in spend[cur])
            previous = _sum_previous([r.previous_cost for r in spend[cur]])
            change = _change(total, previous)
            money = (
                _td(f.money("total", total))
                + _td(f.money("previous_total", previous))
                + _td(f.money("change", change, signed=True), missing="new")
                + _td(f.pct("change_pct", _pct(change, previous), signed=True))
            )
        else:
            money = _td(None) * 4
        base = _sum(r.total_cost for r in untagged.get(cur, ()))
        shares = (
            _td(f.pct("untagged_pct", _pct(_sum(r.untagged_cost for r in untagged[cur]), base)))
            + _td(
                f.pct(
                    "unallocated_pct", _pct(_sum(r.unallocated_cost for r in untagged[cur]), base)
                )
            )
            if cur in untagged
            else _td(None) * 2
        )
        rows.append(f'<tr><th scope="row">{_e(cur)}</th>{money}{shares}</tr>')
    totals = (
        _table((("Currency", False), *MOM_HEAD, ("Untagged", True), ("Unallocated", True)), rows)
        if rows
        else '<p class="empty">No cost in this month.</p>'
    )
    counts: dict[str, int] = defaultdict(int)
    for inv in fig.invoices:
        counts[inv.status] += 1
    statuses = [*INVOICE_STATUSES, *sorted(s for s in counts if s not in INVOICE_STATUSES)]
    items = []
    for status in statuses:
        c = _Figures("summary", ("invoices", status), None).count("count", counts[status])
        items.append(
            f'<li>{_badge(status, INVOICE_BADGES)} <span class="count" {c.attrs()}>'
            f"{_e(c.text)}</span></li>"
        )
    invoices = (
        f'<h3>Invoice reconciliation</h3><ul class="status-counts">{"".join(items)}</ul>'
        if fig.invoices
        else '<h3>Invoice reconciliation</h3><p class="empty">No invoices to match.</p>'
    )
    intro = (
        f"Total cost per currency for {_e(fig.period)} against {_e(fig.previous_period)}. "
        "Untagged and unallocated are shares of each currency's total."
    )
    return _section("summary", "Summary", totals + invoices, intro)


def _spend(ids: _Ids, fig: ReportFigures) -> str:
    _unique(((r.department, r.team, r.currency) for r in fig.spend), "spend")
    blocks = []
    for cur, rows in _group(fig.spend).items():
        depts = _departments(rows)
        body, bars = [], []
        for d in depts:
            f = _Figures("spend", (d.name,), cur)
            body.append(
                f'<tr class="group"><th scope="row">{_e(d.name)}</th>'
                f"{_mom_cells(f, d.cost, d.previous)}</tr>"
            )
            bars.append(_Bar(d.name, f.money("cost", d.cost)))
            for t in d.teams:
                tf = _Figures("spend", (d.name, t.team), cur)
                body.append(
                    f'<tr class="sub"><th scope="row">{_e(t.team)}</th>'
                    f"{_mom_cells(tf, t.cost, t.previous_cost)}</tr>"
                )
        sf = _Figures("summary", (), cur)
        total = _sum(d.cost for d in depts)
        previous = _sum_previous([r.previous_cost for r in rows])
        change = _change(total, previous)
        foot = (
            f'<tr><th scope="row">Total {_e(cur)}</th>{_td(sf.money("total", total))}'
            f"{_td(sf.money('previous_total', previous))}"
            f"{_td(sf.money('change', change, signed=True), missing='new')}"
            f"{_td(sf.pct('change_pct', _pct(change, previous), signed=True))}</tr>"
        )
        chart = _bar_chart(ids, f"Cost by department, {cur}", bars)
        blocks.append(
            f'<div class="currency"><h3>{_e(cur)}</h3><figure class="chart-box">{chart}'
            f"<figcaption>Cost by department in {_e(cur)}</figcaption></figure>"
            f"{_table(SPEND_HEAD, body, foot, widths=(32, 17, 17, 17, 17))}"
            "</div>"
        )
    body = "".join(blocks) or '<p class="empty">No cost in this month.</p>'
    intro = "By department, then team within department. Credits can make a team negative."
    return _section("spend", "Spend by department and team", body, intro)


def _services(ids: _Ids, fig: ReportFigures) -> str:
    _unique(((r.provider, r.service, r.currency) for r in fig.services), "services")
    blocks = []
    for cur, rows in _group(fig.services).items():
        body, bars = [], []
        for r in rows:  # the given order: already the top N
            f = _Figures("services", (r.provider, r.service), cur)
            body.append(
                f"<tr><td>{_e(r.provider)}</td><th scope='row'>{_e(r.service)}</th>"
                f"{_mom_cells(f, r.cost, r.previous_cost)}</tr>"
            )
            bars.append(_Bar(f"{r.provider} {r.service}", f.money("cost", r.cost)))
        chart = _bar_chart(ids, f"Top services, {cur}", bars)
        blocks.append(
            f'<div class="currency"><h3>{_e(cur)}</h3><figure class="chart-box">{chart}'
            f"<figcaption>Top services by cost in {_e(cur)}</figcaption></figure>"
            f"{_table(SERVICE_HEAD, body, widths=(12, 20, 17, 17, 17, 17))}</div>"
        )
    body = "".join(blocks) or '<p class="empty">No services in this month.</p>'
    return _section("services", "Top services", body)


UNTAGGED_COLOR, UNALLOCATED_COLOR = "#9a5b00", "#5b3f99"


def _untagged(ids: _Ids, fig: ReportFigures) -> str:
    _unique(((r.provider, r.currency) for r in fig.untagged), "untagged")
    body = []
    for r in sorted(fig.untagged, key=lambda r: (r.currency, r.provider)):
        f = _Figures("untagged", (r.provider,), r.currency)
        untagged = _pct(r.untagged_cost, r.total_cost)
        unallocated = _pct(r.unallocated_cost, r.total_cost)
        title = (
            f"{r.provider} {r.currency}: untagged "
            f"{format_pct(untagged) if untagged is not None else 'n/a'}, unallocated "
            f"{format_pct(unallocated) if unallocated is not None else 'n/a'} of the total"
        )
        bar = _share_bars(
            ids, title, ((untagged, UNTAGGED_COLOR), (unallocated, UNALLOCATED_COLOR))
        )
        body.append(
            f"<tr><th scope='row'>{_e(r.provider)}</th>{_td(f.money('total_cost', r.total_cost))}"
            f"{_td(f.money('untagged_cost', r.untagged_cost))}"
            f"{_td(f.pct('untagged_pct', untagged))}"
            f"{_td(f.money('unallocated_cost', r.unallocated_cost))}"
            f"{_td(f.pct('unallocated_pct', unallocated))}<td class='bar'>{bar}</td></tr>"
        )
    head = (
        ("Provider", False),
        ("Total", True),
        ("Untagged", True),
        ("Untagged %", True),
        ("Unallocated", True),
        ("Unallocated %", True),
        ("Share", False),
    )
    legend = (
        f'<p class="legend"><span class="key" style="background:{UNTAGGED_COLOR}"></span> untagged '
        f'<span class="key" style="background:{UNALLOCATED_COLOR}"></span> unallocated '
        "(share of the provider's total in that currency)</p>"
    )
    table = _table(head, body) + legend if body else '<p class="empty">No cost to tag.</p>'
    return _section("untagged", "Untagged and unallocated cost", table)


def _commitments(ids: _Ids, fig: ReportFigures) -> str:
    _unique(((r.provider, r.commitment, r.currency) for r in fig.commitments), "commitments")
    if not fig.commitments:
        return _section(
            "commitments",
            "Commitments",
            '<p class="empty">No commitments (reservations or savings plans) this month.</p>',
        )
    body = []
    rows = sorted(
        fig.commitments, key=lambda r: (r.currency, -r.amortized_cost, r.provider, r.commitment)
    )
    for r in rows:
        f = _Figures("commitments", (r.provider, r.commitment), r.currency)
        utilization = _pct(r.used_cost, r.amortized_cost)
        util_text = format_pct(utilization) if utilization is not None else "n/a"
        bar = _share_bars(ids, f"{r.commitment}: {util_text} used", ((utilization, BAR_COLOR),))
        body.append(
            f"<tr><td>{_e(r.provider)}</td><th scope='row'>{_e(r.commitment)}</th>"
            f"{_td(f.money('amortized_cost', r.amortized_cost))}"
            f"{_td(f.money('used_cost', r.used_cost))}{_td(f.money('unused_cost', r.unused_cost))}"
            f"{_td(f.pct('utilization_pct', utilization))}<td class='bar'>{bar}</td></tr>"
        )
    head = (
        ("Provider", False),
        ("Commitment", False),
        ("Amortized", True),
        ("Used", True),
        ("Unused", True),
        ("Utilization", True),
        ("", False),
    )
    intro = "Utilization is used cost over amortized cost."
    return _section("commitments", "Commitments", _table(head, body), intro)


def _anomalies(fig: ReportFigures) -> str:
    if fig.anomalies is None:
        body = f'<p class="empty notice">{NOT_MATERIALIZED}.</p>'
        return _section("anomalies", "Open anomalies", body)
    _unique(((r.anomaly_id, r.currency) for r in fig.anomalies), "anomalies")
    if not fig.anomalies:
        return _section("anomalies", "Open anomalies", '<p class="empty">No open anomalies.</p>')
    body = []
    for r in sorted(fig.anomalies, key=lambda r: (r.currency, -abs(r.impact), r.anomaly_id)):
        f = _Figures("anomalies", (r.anomaly_id,), r.currency)
        body.append(
            f"<tr><th scope='row'>{_e(r.anomaly_id)}</th><td>{_e(r.monitor)}</td>"
            f"<td>{_e(r.series)}</td><td>{_e(r.kind)}</td><td>{_e(r.status)}</td>"
            f"<td class='date'>{_e(r.start_date.isoformat())} – {_e(r.end_date.isoformat())}</td>"
            f"{_td(f.money('impact', r.impact, signed=True))}<td>{_e(r.root_causes)}</td></tr>"
        )
    head = (
        ("Anomaly", False),
        ("Monitor", False),
        ("Series", False),
        ("Kind", False),
        ("Status", False),
        ("Dates", False),
        ("Impact", True),
        ("Root causes", False),
    )
    return _section("anomalies", "Open anomalies", _table(head, body))


def _budgets(ids: _Ids, fig: ReportFigures) -> str:
    if fig.budgets is None:
        body = f'<p class="empty notice">{NOT_MATERIALIZED}.</p>'
        return _section("budgets", "Budgets", body)
    _unique(((r.budget, r.currency) for r in fig.budgets), "budgets")
    if not fig.budgets:
        return _section("budgets", "Budgets", '<p class="empty">No budgets defined.</p>')
    body = []
    for r in sorted(fig.budgets, key=lambda r: (r.budget, r.currency)):
        f = _Figures("budgets", (r.budget,), r.currency)
        body.append(
            f"<tr><th scope='row'>{_e(r.budget)}<span class='owner'>{_e(r.owner)}</span></th>"
            f"{_td(f.money('amount', r.amount))}{_td(f.money('actual', r.actual))}"
            f"{_td(f.pct('actual_pct', r.actual_pct))}{_td(f.money('forecast', r.forecast))}"
            f"{_td(f.pct('forecast_pct', r.forecast_pct))}"
            f"<td>{_badge(r.status, BUDGET_BADGES)}</td>"
            f"<td class='bar'>{_budget_bar(ids, r)}</td></tr>"
        )
    head = (
        ("Budget / owner", False),
        ("Amount", True),
        ("Actual", True),
        ("Actual %", True),
        ("Forecast", True),
        ("Forecast %", True),
        ("Status", False),
        ("Progress", False),
    )
    legend = (
        f'<p class="legend"><span class="key" style="background:{BAR_COLOR}"></span> actual '
        '<span class="key thin" style="background:#7f9fcc"></span> forecast; the line marks 100% '
        "of the amount (red: over).</p>"
    )
    return _section("budgets", "Budgets", _table(head, body) + legend)


def _invoices(fig: ReportFigures) -> str:
    keys = [(r.provider, r.billing_account, r.invoice_id, r.currency) for r in fig.invoices]
    _unique(keys, "invoices")
    if not fig.invoices:
        return _section("invoices", "Invoices", '<p class="empty">No invoices to match.</p>')
    body = []
    rows = sorted(
        fig.invoices, key=lambda r: (r.provider, r.billing_account, r.invoice_id, r.currency)
    )
    for r in rows:
        f = _Figures("invoices", (r.provider, r.billing_account, r.invoice_id), r.currency)
        body.append(
            f"<tr><th scope='row'>{_e(r.provider)}<span class='owner'>{_e(r.billing_account)}"
            f" · {_e(r.invoice_id)}</span></th>"
            f"{_td(f.money('invoice_pre_tax', r.invoice_pre_tax))}"
            f"{_td(f.money('facts_pre_tax', r.facts_pre_tax))}"
            f"{_td(f.money('delta', r.delta, signed=True))}"
            f"{_td(f.money('tolerance', r.tolerance))}"
            f"<td>{_badge(r.status, INVOICE_BADGES)}</td>"
            f"<td class='explain'>{_e(r.explanation)}</td></tr>"
        )
    head = (
        ("Provider / account · invoice", False),
        ("Invoice pre-tax", True),
        ("Cost data pre-tax", True),
        ("Delta", True),
        ("Tolerance", True),
        ("Status", False),
        ("Explanation", False),
    )
    intro = "Delta is the cost data minus the invoice, before tax."
    return _section("invoices", "Invoice reconciliation", _table(head, body), intro)


# ---------------------------------------------------------------------------------------------
# Page

STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 1040px; padding: 24px 28px 40px; background: #fff;
  color: #1b1f24; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; }
header { border-bottom: 3px solid #1f3a60; padding-bottom: 10px; margin-bottom: 8px; }
h1 { font-size: 26px; margin: 0 0 6px; color: #1f3a60; }
h2 { font-size: 19px; margin: 30px 0 8px; padding-bottom: 4px; color: #1f3a60;
  border-bottom: 1px solid #c5ccd6; }
h3 { font-size: 15px; margin: 18px 0 6px; color: #2c333b; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dl.meta dt { color: #4a4f57; } dl.meta dd { margin: 0; font-weight: 600; }
p.note, p.intro, p.legend, figcaption { color: #4a4f57; font-size: 13px; margin: 4px 0 8px; }
nav.toc { margin: 10px 0 0; font-size: 13px; }
nav.toc a { color: #1f4f8a; margin-right: 12px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 13px; }
table.fixed { table-layout: fixed; }
table.fixed td, table.fixed th { overflow-wrap: anywhere; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e1e5ea; text-align: left;
  vertical-align: top; }
thead th { background: #eef1f5; color: #2c333b; font-weight: 600; border-bottom: 1px solid
  #aab3bf; vertical-align: bottom; }
tbody th { font-weight: 500; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.na { color: #5f6670; }
tr.group th, tr.group td { font-weight: 700; background: #f6f8fa; }
tr.sub th { padding-left: 24px; font-weight: 400; }
tfoot th, tfoot td { font-weight: 700; border-top: 2px solid #1f3a60; border-bottom: none; }
.owner { display: block; color: #4a4f57; font-size: 12px; font-weight: 400; }
.explain { font-size: 12px; color: #2c333b; min-width: 12em; }
.date { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.bar { padding-top: 6px; }
figure.chart-box { margin: 4px 0 8px; }
svg { display: block; max-width: 100%; height: auto; }
svg.mini { max-width: none; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
svg .lbl { font-size: 12px; fill: #1b1f24; }
svg .val { font-size: 12px; fill: #1b1f24; font-variant-numeric: tabular-nums; }
svg .axis { font-size: 9px; fill: #4a4f57; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; white-space: nowrap; border: 1px solid transparent; }
.badge-good { background: #e3f3e6; color: #14532d; border-color: #9fd3ab; }
.badge-bad { background: #fde8e8; color: #8b1a1a; border-color: #f0a8a8; }
.badge-warn { background: #fff2d1; color: #6b4100; border-color: #f0cf7c; }
.badge-neutral { background: #eceff3; color: #343a42; border-color: #c5ccd6; }
ul.status-counts { list-style: none; padding: 0; margin: 4px 0; display: flex; flex-wrap: wrap;
  gap: 6px 18px; }
ul.status-counts .count { font-weight: 700; font-variant-numeric: tabular-nums; }
.empty { color: #2c333b; font-style: italic; }
.notice { background: #fff2d1; border-left: 4px solid #b27a00; padding: 6px 10px;
  font-style: normal; }
.key { display: inline-block; width: 12px; height: 10px; vertical-align: middle; }
.key.thin { height: 5px; }
footer { margin-top: 32px; padding-top: 8px; border-top: 1px solid #c5ccd6; color: #4a4f57;
  font-size: 12px; }
@page { size: A4; margin: 12mm 11mm 14mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 9.5pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  nav.toc { display: none; }
  h1 { font-size: 17pt; } h2 { font-size: 13pt; margin-top: 16pt; } h3 { font-size: 11pt; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  table { font-size: 8.5pt; }
  th, td { padding: 2pt 4pt; }
  svg.budget { width: 34mm; height: auto; }
  svg.chart { width: 100%; }
  .explain { min-width: 0; font-size: 8pt; }
  thead { display: table-header-group; }
  tr, figure, svg, .status-counts { break-inside: avoid; page-break-inside: avoid; }
  section { break-before: auto; }
  a { color: inherit; text-decoration: none; }
}
"""

SECTION_TITLES = (
    ("summary", "Summary"),
    ("spend", "Spend"),
    ("services", "Services"),
    ("untagged", "Untagged"),
    ("commitments", "Commitments"),
    ("anomalies", "Anomalies"),
    ("budgets", "Budgets"),
    ("invoices", "Invoices"),
)


def render_report(figures: ReportFigures) -> str:
    """The whole report as one HTML5 document (a ``str``; write it as UTF-8).

    Raises ``ValueError`` when two rows of a section have the same key, since each figure must
    be addressable by its ``data-figure``."""
    ids = _Ids()
    title = f"Cloud cost report {figures.period}"
    toc = "".join(f'<a href="#{sid}">{_e(name)}</a>' for sid, name in SECTION_TITLES)
    header = (
        f"<header><h1>{_e(title)}</h1><dl class='meta'>"
        f"<dt>Period</dt><dd>{_e(figures.period)}</dd>"
        f"<dt>State</dt><dd>{_e(figures.state)}</dd>"
        f"<dt>Cost basis</dt><dd>{_e(figures.basis)}</dd>"
        f"<dt>Compared with</dt><dd>{_e(figures.previous_period)}</dd></dl>"
        "<p class='note'>Amounts are in each row's billing currency. Currencies are never "
        "converted or added together: every total, share and chart is per currency.</p>"
        f"<nav class='toc' aria-label='Sections'>{toc}</nav></header>"
    )
    sections = (
        _summary(figures),
        _spend(ids, figures),
        _services(ids, figures),
        _untagged(ids, figures),
        _commitments(ids, figures),
        _anomalies(figures),
        _budgets(ids, figures),
        _invoices(figures),
    )
    footer = f"<footer>{_e(figures.footer)}</footer>" if figures.footer else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"{header}\n<main>\n" + "\n".join(sections) + f"\n</main>\n{footer}\n</body>\n</html>\n"
    )


class _FigureParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.figures: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        key = values.get("data-figure")
        if key is None:
            return
        value = values.get("data-value")
        if value is None:
            raise ValueError(f"<{tag} data-figure={key!r}> has no data-value")
        known = self.figures.setdefault(key, value)
        if known != value:
            raise ValueError(f"data-figure {key!r} has two values: {known!r} and {value!r}")


def report_figures_index(html_text: str) -> dict[str, str]:
    """Every ``data-figure`` of a rendered report mapped to its ``data-value`` (in document
    order), so a test or the pipeline can compare the page with the warehouse. Raises
    ``ValueError`` when a figure has no value or two different ones."""
    parser = _FigureParser()
    parser.feed(html_text)
    parser.close()
    return parser.figures


def report_alert(
    period: str,
    state: str,
    page: str,
    totals: dict[str, Decimal],
    timestamp: datetime,
    link: str | None = None,
) -> Alert:
    """The report as a message for the alert targets: the HTML page attached (email) or named
    (webhooks), the month's totals per currency in the text. The id is the period and the page's
    sha256, so a receiver that deduplicates sees one message per version of the report."""
    attachment = Attachment(f"finops-report-{period}.html", page.encode("utf-8"), "text/html")
    lines = [format_money(Decimal(a), c) for c, a in sorted(totals.items())]
    return Alert(
        alert_id=f"report-{period}-{attachment.sha256[:16]}",
        kind="report",
        title=f"Monthly cost report {period} ({state.split(' (')[0]})",
        text=(
            f"The cost report of {period} is attached ({attachment.filename}, one self-contained "
            "page: open it in a browser). Totals: " + ("; ".join(lines) or "no cost") + "."
        ),
        severity="info",
        timestamp=timestamp,
        asset_key="finance/monthly_report",
        partition=period,
        job_name="close_month",
        link=link,
        metadata={"state": state, "sha256": attachment.sha256},
        attachments=(attachment,),
    )
