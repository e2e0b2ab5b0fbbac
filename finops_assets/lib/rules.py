"""The rules YAML: tag dimensions, loader settings, warehouse settings.

Validated when definitions load, so a typo fails fast with the file, line and fix instead of
producing a quietly wrong rollup.
"""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from finops_assets.lib.alerts import AlertsConfig
from finops_assets.sources import SOURCE_NAMES, SOURCES

UNTAGGED = "__untagged__"
UNKNOWN = "__unknown__"


class RulesError(ValueError):
    pass


def normalize_tag_key(key: str) -> str:
    return key.strip().casefold()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dimension(_Strict):
    aliases: tuple[str, ...] = Field(min_length=1)
    missing: str = UNTAGGED
    values: dict[str, str] = Field(default_factory=dict)

    @field_validator("aliases")
    @classmethod
    def _normalize_aliases(cls, aliases: tuple[str, ...]) -> tuple[str, ...]:
        normalized = tuple(normalize_tag_key(a) for a in aliases)
        if any(not a for a in normalized):
            raise ValueError("an alias is empty; remove it or give the tag key")
        return normalized

    @field_validator("values")
    @classmethod
    def _normalize_values(cls, values: dict[str, str]) -> dict[str, str]:
        return {normalize_tag_key(k): v.strip().casefold() for k, v in values.items()}


class WarehouseSettings(_Strict):
    memory_limit: str = "1GB"
    threads: int = Field(default=2, ge=1)
    lock_timeout_seconds: float = Field(default=3600, gt=0)


class GcpRules(_Strict):
    """GCP billing export: PROMOTION credit policy and the optional BigQuery direct mode."""

    # discount: promotional credits reduce BilledCost/EffectiveCost like other credits;
    # payment: they are a means of paying the invoice and do not reduce cost.
    promotion_credits: Literal["discount", "payment"] = "discount"
    # project.dataset.gcp_billing_export[_resource]_v1_<account>: read BigQuery, not the landing.
    bigquery_table: str | None = None

    @field_validator("bigquery_table")
    @classmethod
    def _check_table(cls, table: str | None) -> str | None:
        from finops_assets.defs.sources.gcp.billing_export import validate_bigquery_table

        return None if table is None else validate_bigquery_table(table)


class AmortizationRules(_Strict):
    """How core/amortized_costs treats commitments and prepaid purchases."""

    # Purchases a source did not amortize (EffectiveCost = BilledCost on a purchase whose charge
    # period spans at least ``min_term_days`` days): "daily" spreads the cost evenly per day
    # over the charge period (cent-exact), "none" leaves it on the purchase day.
    spread_purchases: Literal["daily", "none"] = "daily"
    min_term_days: int = Field(default=2, ge=2)
    # Unused commitment cost: "central" keeps it in the commitments pool (owner
    # ``commitment_pool``); "redistribute" moves it to the commitment's consumers of the same
    # day in proportion to their used amount.
    unused_commitment_cost: Literal["central", "redistribute"] = "central"
    # The owner (a key of ``owners``, or a bare team name) that holds central commitment cost.
    commitment_pool: str = "__commitments__"
    # Commitment balance check: |Σ purchases - Σ amortized| allowed per commitment and month.
    balance_tolerance: Decimal = Field(default=Decimal("0.01"), ge=0)


class Owner(_Strict):
    """An owner (a value of the ownership dimension) and the other dimensions it implies."""

    dimensions: dict[str, str] = Field(default_factory=dict)
    # Where the owner's own alerts (budgets, anomalies of its series) go, besides every alert
    # target: email addresses (sent through the first email target's server) and/or the name
    # of an environment variable holding a webhook URL.
    alert_recipients: tuple[str, ...] = ()
    alert_webhook_env: str | None = None

    @field_validator("dimensions")
    @classmethod
    def _normalize(cls, dims: dict[str, str]) -> dict[str, str]:
        return {k: v.strip().casefold() for k, v in dims.items()}

    @field_validator("alert_recipients")
    @classmethod
    def _check_recipients(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if "@" not in value or any(c.isspace() for c in value):
                raise ValueError(f"alert recipient {value!r} is not an email address")
        return values

    @field_validator("alert_webhook_env")
    @classmethod
    def _check_env(cls, value: str | None) -> str | None:
        if value is not None and not value.isidentifier():
            raise ValueError(
                f"alert_webhook_env {value!r} is the name of an environment variable holding the "
                "URL (e.g. PAYMENTS_SLACK_WEBHOOK_URL), not the URL"
            )
        return value


class HierarchyNode(_Strict):
    """An account / subscription / project (or a folder above them) in the rules' hierarchy."""

    parent: str | None = None
    owner: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)
    # Where the owner's own alerts (budgets, anomalies of its series) go, besides every alert
    # target: email addresses (sent through the first email target's server) and/or the name
    # of an environment variable holding a webhook URL.
    alert_recipients: tuple[str, ...] = ()
    alert_webhook_env: str | None = None

    @field_validator("dimensions")
    @classmethod
    def _normalize(cls, dims: dict[str, str]) -> dict[str, str]:
        return {k: v.strip().casefold() for k, v in dims.items()}

    @field_validator("alert_recipients")
    @classmethod
    def _check_recipients(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if "@" not in value or any(c.isspace() for c in value):
                raise ValueError(f"alert recipient {value!r} is not an email address")
        return values

    @field_validator("alert_webhook_env")
    @classmethod
    def _check_env(cls, value: str | None) -> str | None:
        if value is not None and not value.isidentifier():
            raise ValueError(
                f"alert_webhook_env {value!r} is the name of an environment variable holding the "
                "URL (e.g. PAYMENTS_SLACK_WEBHOOK_URL), not the URL"
            )
        return value


MATCHABLE_COLUMNS = (
    "ProviderName",
    "ServiceName",
    "ServiceCategory",
    "ChargeCategory",
    "BillingAccountId",
    "SubAccountId",
    "SkuId",
    "ResourceId",
    "RegionId",
    "CommitmentDiscountId",
)


class PoolMatch(_Strict):
    """Which unowned rows a shared pool takes: every listed column must hold one of its values
    (exact), and every listed tag key (raw key, case-folded) one of its values."""

    ProviderName: tuple[str, ...] = ()
    ServiceName: tuple[str, ...] = ()
    ServiceCategory: tuple[str, ...] = ()
    ChargeCategory: tuple[str, ...] = ()
    BillingAccountId: tuple[str, ...] = ()
    SubAccountId: tuple[str, ...] = ()
    SkuId: tuple[str, ...] = ()
    ResourceId: tuple[str, ...] = ()
    RegionId: tuple[str, ...] = ()
    CommitmentDiscountId: tuple[str, ...] = ()
    tags: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("*", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, str | int | float):
            return (str(value),)
        if isinstance(value, list):
            return tuple(str(v) for v in value)
        if isinstance(value, dict):
            return {
                str(k): (str(v),) if isinstance(v, str | int | float) else tuple(map(str, v))
                for k, v in value.items()
            }
        return value

    def is_empty(self) -> bool:
        return not self.tags and not any(getattr(self, c) for c in MATCHABLE_COLUMNS)


SPLIT_METHODS = ("proportional", "even", "fixed", "metric")


class SharedPool(_Strict):
    """A shared cost (support plan, egress, central logging...) split across owners."""

    name: str
    match: PoolMatch
    split: str = "proportional"
    # proportional/metric: weigh owners per provider (a pool of AWS support shared by AWS users).
    per_provider: bool = False
    # even (optional; default every owner with direct cost that day) and fixed (with weights).
    owners: tuple[str, ...] = ()
    weights: dict[str, Decimal] = Field(default_factory=dict)
    # metric: a numeric FOCUS column summed per owner over the rows matching metric_match.
    metric: str | None = None
    metric_match: PoolMatch | None = None


# The raw sources a freshness SLA can name (the registry, finops_assets.sources).
FRESHNESS_SOURCES = SOURCE_NAMES


class DeliveryRules(_Strict):
    """How the delivery sensors decide a delivery is complete."""

    # GCP has no manifest: a usage day is loaded once its max(export_time) has not moved for
    # this long (as seen by the sensor).
    gcp_settle_minutes: float = Field(default=60, ge=0)
    # Layouts without a manifest or completeness flag (Azure classic exports, FOCUS files in a
    # folder of their own making): the newest file of a stream and period is loaded once it has
    # not changed for this long.
    settle_minutes: float = Field(default=60, ge=0)
    # Restatement guard: a newer delivery that removes a loaded month's rows, or cuts its billed
    # cost by more than this percentage, is held for a person (README, "Restatement guard").
    max_restatement_drop_pct: float = Field(default=50, ge=0, le=100)
    # Rows a delivery carries for days outside its own billing period and outside the
    # correction_months window: "fail" (default: the load fails naming the files and counts),
    # "load" (placed in their own days when within correction_months after the period) or "drop"
    # (counted in the run's metadata and a warning, not loaded). default.yaml says precisely.
    rows_outside_period: Literal["fail", "load", "drop"] = "fail"


class SourceFreshness(_Strict):
    """A source's delivery deadline: day D must be loaded sla_hours after D ends (UTC)."""

    sla_hours: float = Field(gt=0, le=24 * 31)


def _default_freshness() -> dict[str, SourceFreshness]:
    return {spec.name: SourceFreshness(sla_hours=spec.default_sla_hours) for spec in SOURCES}


# Columns of core.allocated_costs an anomaly monitor can split by (besides the dimensions).
MONITOR_COLUMNS = (
    "ProviderName",
    "x_Source",
    "BillingAccountId",
    "SubAccountId",
    "ServiceCategory",
    "ServiceName",
    "RegionId",
)


class AnomalyThresholds(_Strict):
    """The three gates and the event knobs of the anomaly model (``lib/anomalies.AnomalyModel``);
    every key can be set for all monitors and overridden per monitor."""

    z: float | None = Field(default=None, gt=0)
    # Impact floor in the series' currency; min_impact_by_currency overrides it per currency
    # (e.g. JPY: 15000), since a 100 floor means different things in USD and JPY.
    min_impact: float | None = Field(default=None, ge=0)
    min_impact_by_currency: dict[str, float] = Field(default_factory=dict)
    min_pct: float | None = Field(default=None, ge=0)
    weeks: int | None = Field(default=None, ge=2, le=26)
    min_history: int | None = Field(default=None, ge=7)
    level_shift_days: int | None = Field(default=None, ge=2)
    close_after: int | None = Field(default=None, ge=1)


class AnomalyMonitor(AnomalyThresholds):
    """One monitor: the usage series of every distinct value of ``by`` (``by: []`` is the total),
    one series per currency. New values (a new team, a new service) get a series automatically."""

    name: str
    by: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"monitor name {name!r}: use letters, digits, - and _")
        return name


def _default_monitors() -> tuple[AnomalyMonitor, ...]:
    return (
        AnomalyMonitor(name="total"),
        AnomalyMonitor(name="team", by=("team",)),
        AnomalyMonitor(name="service_category", by=("ServiceCategory",)),
        AnomalyMonitor(name="sub_account", by=("SubAccountId",)),
        AnomalyMonitor(name="team_service", by=("team", "ServiceName")),
    )


class AnomalyRules(AnomalyThresholds):
    """The ``anomalies:`` section: the monitors and the thresholds they share."""

    monitors: tuple[AnomalyMonitor, ...] = Field(default_factory=_default_monitors)
    # A new event alerts when its last day is at most this many days before the newest complete
    # day (a backfill of last year finds last year's events without paging anyone for them).
    alert_recent_days: int = Field(default=3, ge=0)
    # Credits: a daily credit seen on at least this share of the last 14 complete days that is
    # absent for close_after days in a row is an anomaly ("credit stopped").
    credit_presence: float = Field(default=0.8, gt=0, le=1)

    def thresholds(self, monitor: AnomalyMonitor, currency: str) -> dict[str, float | int]:
        """The model keys for one series: the monitor's value, else the section's, else the
        model default (absent from the result)."""
        values: dict[str, float | int] = {}
        for key in ("z", "min_impact", "min_pct", "weeks", "min_history", "level_shift_days"):
            value = getattr(monitor, key)
            value = getattr(self, key) if value is None else value
            if value is not None:
                values[key] = value
        if monitor.close_after is not None or self.close_after is not None:
            values["close_after"] = (
                monitor.close_after if monitor.close_after is not None else self.close_after
            )
        # The most specific floor wins: the monitor's for the currency, the monitor's, the
        # section's for the currency, the section's.
        if currency in monitor.min_impact_by_currency:
            values["min_impact"] = monitor.min_impact_by_currency[currency]
        elif monitor.min_impact is None and currency in self.min_impact_by_currency:
            values["min_impact"] = self.min_impact_by_currency[currency]
        return values


class ForecastScope(_Strict):
    """Month-end forecasts per value of ``by`` (``by: []``: the total) and currency."""

    name: str
    by: tuple[str, ...] = ()


def _default_scopes() -> tuple[ForecastScope, ...]:
    return (
        ForecastScope(name="total"),
        ForecastScope(name="team", by=("team",)),
        ForecastScope(name="cost_center", by=("cost_center",)),
        ForecastScope(name="provider", by=("ProviderName",)),
    )


class ForecastRules(_Strict):
    scopes: tuple[ForecastScope, ...] = Field(default_factory=_default_scopes)
    coverage: float = Field(default=0.8, gt=0, lt=1)


class BudgetThresholds(_Strict):
    actual: tuple[float, ...] = (50, 80, 100)  # % of the amount spent so far
    forecast: tuple[float, ...] = (80, 100)  # % of the amount the period is forecast to reach


class Budget(_Strict):
    """An amount for a scope and period; its thresholds alert once per period each."""

    name: str
    # Column -> value (any dimension, or ProviderName, SubAccountId, ...), and/or tag: {key: value}
    # for a resource tag as delivered. Empty: all cost in the currency.
    scope: dict[str, Any] = Field(default_factory=dict)
    period: Literal["month", "quarter", "year"] = "month"
    amount: Decimal = Field(gt=0)
    currency: str
    basis: Literal["EffectiveCost", "BilledCost"] = "EffectiveCost"
    thresholds: BudgetThresholds = BudgetThresholds()
    owner: str | None = None  # an owner under owners: (gets the alerts besides FinOps)

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise ValueError(f"currency {value!r}: use an ISO 4217 code such as USD")
        return value.upper()


class BudgetRules(_Strict):
    budgets: tuple[Budget, ...] = ()
    # A threshold that fired re-arms only after the figure falls this many points below it.
    rearm_points: float = Field(default=5, ge=0)
    # As in anomalies: only thresholds crossed on an as-of day this recent are alerted.
    alert_recent_days: int = Field(default=3, ge=0)


class CompletenessRules(_Strict):
    """When a day is complete enough for insights (anomalies, forecasts, budgets)."""

    # The newest days a source has delivered are still filling in: AWS rewrites the latest day
    # of a month-to-date CUR up to three times a day, Azure's exports lag about 36 hours, GCP
    # adds late rows for a day after its export_time settled. Day D of a source is complete once
    # the source has delivered a day at least settle_days after D.
    settle_days: dict[str, int] = Field(
        default_factory=lambda: {"aws_cur": 1, "azure_cost": 2, "gcp_billing": 1, "focus": 1}
    )
    # A source with no rows for this many days before a day no longer delivers it (a retired
    # account or provider does not hold every later day incomplete).
    retired_after_days: int = Field(default=7, ge=1)

    @field_validator("settle_days")
    @classmethod
    def _check_sources(cls, values: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(values) - set(SOURCE_NAMES))
        if unknown:
            raise ValueError(
                f"unknown source(s) {', '.join(unknown)}; use {', '.join(SOURCE_NAMES)}"
            )
        if any(v < 0 for v in values.values()):
            raise ValueError("settle_days must be >= 0")
        return values


class SloRules(_Strict):
    """Service level objectives of the pipeline itself (ops/pipeline_health, lib/pipeline_health):
    each SLI breaching its objective over the window fails its check, which alerts."""

    # Charge days looked at: the last window_days days before today (UTC).
    window_days: int = Field(default=7, ge=1, le=90)
    # Share of due days whose first delivery came by the source's freshness deadline.
    delivery_success_rate_min: float = Field(default=0.95, ge=0, le=1)
    # Provider timestamp of a day's first delivery -> the day loaded in raw.
    delivery_latency_hours_max: float = Field(default=6, gt=0)
    # Raw loaded -> mart/daily_cost_by_team materialized.
    mart_latency_hours_max: float = Field(default=6, gt=0)
    # Provider timestamp -> published to the serving zone.
    data_to_display_hours_max: float = Field(default=12, gt=0)
    duplicate_line_rate_max: float = Field(default=0, ge=0, le=1)
    overlapping_deliveries_max: int = Field(default=0, ge=0)
    # Days whose upstream is newer than the downstream (restated, not yet rebuilt).
    backfill_backlog_max: int = Field(default=0, ge=0)
    schema_failures_max: int = Field(default=0, ge=0)
    # Deliveries whose manifest row count differs from the rows loaded.
    silent_zero_loads_max: int = Field(default=0, ge=0)
    # Σ unallocated / Σ total effective cost, per currency.
    unallocated_share_max: float = Field(default=0.25, ge=0, le=1)
    # Alerts delivered / alerts attempted.
    alert_delivery_success_min: float = Field(default=1.0, ge=0, le=1)


class AwsInvoicingRules(_Strict):
    """finance/invoices from the AWS Invoicing API (ListInvoiceSummaries, us-east-1)."""

    # Payer / management account ids whose invoices are read; empty: the API is not called.
    accounts: tuple[str, ...] = ()
    region: str = "us-east-1"


class GlAccountRule(_Strict):
    """Charges matching every listed column value go to ``account`` (first rule wins)."""

    account: str = Field(min_length=1)
    match: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class FinanceRules(_Strict):
    """Month close (asset group finance): invoices, reconciliation, chargeback, journal."""

    aws_invoicing: AwsInvoicingRules = AwsInvoicingRules()
    # Landing-zone folder with the hand-kept invoices.csv and FOCUS Invoice Detail exports.
    invoices_prefix: str = "invoices/"
    # Chargeback and journal basis.
    basis: Literal["EffectiveCost", "BilledCost"] = "EffectiveCost"
    gl_accounts: tuple[GlAccountRule, ...] = ()
    # The journal the ERP imports: offset (accrued cost) account, and the ERP's column names for
    # the canonical columns it wants, in its order (empty: every canonical column, as named).
    journal_offset_account: str = "2100"
    journal_columns: dict[str, str] = Field(default_factory=dict)
    journal_date_format: str = "%Y-%m-%d"
    erp_layout: str = "generic"
    # Alert targets (names under alerts:) the monthly report is sent to when it changes: email
    # targets attach the HTML file, webhooks get a message naming it.
    send_report_to: tuple[str, ...] = ()


class Rules(_Strict):
    dimensions: dict[str, Dimension]
    ownership_dimension: str = "team"
    correction_months: int = Field(default=1, ge=0, le=12)
    # Provider prefixes removed from tag keys before alias matching (AWS: "user:Team").
    tag_key_prefixes: tuple[str, ...] = ("user:",)
    warehouse: WarehouseSettings = WarehouseSettings()
    gcp: GcpRules = GcpRules()
    amortization: AmortizationRules = AmortizationRules()
    # Where failed checks and failed runs are sent (webhooks, email); see lib/alerts.py.
    alerts: AlertsConfig = AlertsConfig()
    # Owners by ownership-dimension value (e.g. team name) with the dimensions they imply.
    owners: dict[str, Owner] = Field(default_factory=dict)
    # Account / subscription / project ids (and folders above them) -> owner and dimensions.
    hierarchy: dict[str, HierarchyNode] = Field(default_factory=dict)
    shared_pools: tuple[SharedPool, ...] = ()
    # Owner of cost nothing else assigns; null keeps it visible as the missing sentinel.
    default_pool: str | None = None
    deliveries: DeliveryRules = DeliveryRules()
    # Per raw source (aws_cur, azure_cost, gcp_billing, focus): delivery SLA for freshness.
    freshness: dict[str, SourceFreshness] = Field(default_factory=_default_freshness)
    # Insights (schema insights): anomaly monitors, and when a day is complete enough to score.
    anomalies: AnomalyRules = AnomalyRules()
    completeness: CompletenessRules = CompletenessRules()
    forecasts: ForecastRules = ForecastRules()
    budgets: tuple[Budget, ...] = ()
    budget_alerts: BudgetRules = BudgetRules()
    finance: FinanceRules = FinanceRules()
    slos: SloRules = SloRules()

    @model_validator(mode="after")
    def _check(self) -> Rules:
        required = {"department", "team", "environment", "cost_center"}
        missing = sorted(required - set(self.dimensions))
        if missing:
            raise ValueError(
                f"dimensions must define {', '.join(missing)} (the marts report them); "
                "add them with at least one alias each"
            )
        unknown = sorted(set(self.freshness) - set(FRESHNESS_SOURCES))
        if unknown:
            raise ValueError(
                f"freshness: unknown source(s) {', '.join(unknown)}; use "
                f"{', '.join(FRESHNESS_SOURCES)}"
            )
        for name in self.dimensions:
            if not name.isidentifier() or name != name.lower():
                raise ValueError(
                    f"dimension name {name!r} must be a lower-case identifier (it becomes a column)"
                )
        seen: dict[str, str] = {}
        for name, dimension in self.dimensions.items():
            for alias in dimension.aliases:
                if alias in seen and seen[alias] != name:
                    raise ValueError(
                        f"tag alias {alias!r} is listed under both {seen[alias]!r} and {name!r}; "
                        "a tag key can feed only one dimension"
                    )
                seen[alias] = name
        if self.ownership_dimension not in self.dimensions:
            raise ValueError(
                f"ownership_dimension {self.ownership_dimension!r} is not a dimension; "
                f"use one of {sorted(self.dimensions)}"
            )
        return self


def cross_reference_problems(rules: Rules) -> list[tuple[tuple[Any, ...], str]]:
    """Mistakes that span sections (an unknown owner, a hierarchy cycle, bad weights), each with
    the location of the offending key for the line number."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    known = sorted(rules.owners)
    dims = set(rules.dimensions)

    def owner_problem(location: tuple[Any, ...], owner: str) -> None:
        if rules.owners and owner not in rules.owners:
            problems.append(
                (
                    location,
                    f"unknown owner {owner!r}; declare it under owners: (known: {', '.join(known)})",
                )
            )

    def dimension_problems(location: tuple[Any, ...], names) -> None:
        for name in names:
            if name not in dims:
                problems.append(
                    (
                        (*location, name),
                        f"{name!r} is not a dimension; use one of {', '.join(sorted(dims))}",
                    )
                )

    for name, owner in rules.owners.items():
        dimension_problems(("owners", name, "dimensions"), owner.dimensions)
        if rules.ownership_dimension in owner.dimensions:
            problems.append(
                (
                    ("owners", name, "dimensions", rules.ownership_dimension),
                    f"the owner's name is its {rules.ownership_dimension}; remove this key",
                )
            )
    for node_id, node in rules.hierarchy.items():
        dimension_problems(("hierarchy", node_id, "dimensions"), node.dimensions)
        if node.owner is not None:
            owner_problem(("hierarchy", node_id, "owner"), node.owner)
        if node.parent is not None and node.parent not in rules.hierarchy:
            problems.append(
                (
                    ("hierarchy", node_id, "parent"),
                    f"parent {node.parent!r} is not a hierarchy node; add it or fix the id",
                )
            )
        seen = [node_id]
        parent = node.parent
        while parent is not None and parent in rules.hierarchy:
            if parent in seen:
                cycle = " -> ".join([*seen[seen.index(parent) :], parent])
                if parent == node_id:
                    problems.append(
                        (
                            ("hierarchy", node_id, "parent"),
                            f"the hierarchy has a cycle ({cycle}); a node cannot be its own "
                            "ancestor, remove one of these parent links",
                        )
                    )
                break
            seen.append(parent)
            parent = rules.hierarchy[parent].parent
    names: set[str] = set()
    for index, pool in enumerate(rules.shared_pools):
        where = ("shared_pools", index)
        if pool.name in names:
            problems.append(((*where, "name"), f"pool name {pool.name!r} is used twice"))
        names.add(pool.name)
        if pool.match.is_empty():
            problems.append(
                (
                    (*where, "match"),
                    "the match is empty and would take every unowned row; "
                    "list at least one column or tag",
                )
            )
        if pool.split not in SPLIT_METHODS:
            problems.append(
                (
                    (*where, "split"),
                    f"unknown split method {pool.split!r}; use one of {', '.join(SPLIT_METHODS)}",
                )
            )
        for position, owner in enumerate(pool.owners):
            owner_problem((*where, "owners", position), owner)
        for owner in pool.weights:
            owner_problem((*where, "weights", owner), owner)
        if pool.split == "fixed":
            total = sum(pool.weights.values(), Decimal(0))
            if not pool.weights:
                problems.append(((*where, "weights"), "split: fixed needs weights: {owner: share}"))
            elif total != 1:
                problems.append(
                    (
                        (*where, "weights"),
                        f"weights sum to {total}, not 1; make the shares add up to exactly 1",
                    )
                )
            if any(w < 0 for w in pool.weights.values()):
                problems.append(((*where, "weights"), "a weight is negative; use shares >= 0"))
        elif pool.weights:
            problems.append(
                ((*where, "weights"), f"weights only apply to split: fixed, not {pool.split}")
            )
        if pool.split == "metric":
            if pool.metric not in METRIC_COLUMNS:
                problems.append(
                    (
                        (*where, "metric"),
                        f"split: metric needs metric: one of {', '.join(METRIC_COLUMNS)}",
                    )
                )
        elif pool.metric is not None:
            problems.append(
                ((*where, "metric"), f"metric only applies to split: metric, not {pool.split}")
            )
    if rules.default_pool is not None:
        owner_problem(("default_pool",), rules.default_pool)
    monitor_names: set[str] = set()
    for index, monitor in enumerate(rules.anomalies.monitors):
        where = ("anomalies", "monitors", index)
        if monitor.name in monitor_names:
            problems.append(((*where, "name"), f"monitor name {monitor.name!r} is used twice"))
        monitor_names.add(monitor.name)
        for position, column in enumerate(monitor.by):
            if column not in dims and column not in MONITOR_COLUMNS:
                problems.append(
                    (
                        (*where, "by", position),
                        f"cannot monitor by {column!r}; use a dimension "
                        f"({', '.join(sorted(dims))}) or one of {', '.join(MONITOR_COLUMNS)}",
                    )
                )
        if len(set(monitor.by)) != len(monitor.by):
            problems.append(((*where, "by"), "a column is listed twice"))
    for index, scope in enumerate(rules.forecasts.scopes):
        for position, column in enumerate(scope.by):
            if column not in dims and column not in MONITOR_COLUMNS:
                problems.append(
                    (
                        ("forecasts", "scopes", index, "by", position),
                        f"cannot forecast by {column!r}; use a dimension or one of "
                        f"{', '.join(MONITOR_COLUMNS)}",
                    )
                )
    budget_names: set[str] = set()
    for index, budget in enumerate(rules.budgets):
        where = ("budgets", index)
        if budget.name in budget_names:
            problems.append(((*where, "name"), f"budget name {budget.name!r} is used twice"))
        budget_names.add(budget.name)
        for column, value in budget.scope.items():
            if column == "tag":
                if not isinstance(value, dict) or not value:
                    problems.append(((*where, "scope", "tag"), "tag: needs {key: value}"))
            elif column not in dims and column not in MONITOR_COLUMNS:
                problems.append(
                    (
                        (*where, "scope", column),
                        f"cannot scope a budget by {column!r}; use a dimension, tag, or one of "
                        f"{', '.join(MONITOR_COLUMNS)}",
                    )
                )
            elif not isinstance(value, str | int):
                problems.append(((*where, "scope", column), "the value must be a single string"))
        if budget.owner is not None and budget.owner not in rules.owners:
            problems.append(
                (
                    (*where, "owner"),
                    f"unknown owner {budget.owner!r}; declare it under owners: with its "
                    "alert_recipients",
                )
            )
    targets = [t.name for t in rules.alerts.targets]
    for index, name in enumerate(rules.finance.send_report_to):
        if name not in targets:
            problems.append(
                (
                    ("finance", "send_report_to", index),
                    f"{name!r} is not an alert target; name one under alerts: webhooks / email "
                    f"(known: {', '.join(targets) or 'none'})",
                )
            )
    return problems


METRIC_COLUMNS = (
    "ConsumedQuantity",
    "PricingQuantity",
    "EffectiveCost",
    "BilledCost",
    "ListCost",
)


def inherited_dimensions(rules: Rules) -> dict[str, dict[str, str]]:
    """Every hierarchy node with the dimensions it passes down: its own, then its owner's, then
    the nearest ancestor's (the closest node wins per dimension)."""
    resolved: dict[str, dict[str, str]] = {}
    for node_id in rules.hierarchy:
        values: dict[str, str] = {}
        current: str | None = node_id
        while current is not None and current in rules.hierarchy:
            node = rules.hierarchy[current]
            own = dict(node.dimensions)
            if node.owner is not None:
                own.setdefault(rules.ownership_dimension, node.owner.strip().casefold())
                owner = rules.owners.get(node.owner)
                for key, value in (owner.dimensions if owner else {}).items():
                    own.setdefault(key, value)
            for key, value in own.items():
                values.setdefault(key, value)
            current = node.parent
        resolved[node_id] = values
    return resolved


def default_rules_path() -> Path:
    return Path(str(resources.files("finops_assets") / "config" / "default.yaml"))


def _line_of(node: yaml.Node | None, location: tuple[Any, ...]) -> int | None:
    """Best-effort 1-based line of a pydantic error location in the YAML source."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in location:
        if isinstance(node, yaml.MappingNode):
            # A key given twice: YAML loaders keep the last one, so point at the last one.
            match = next((v for k, v in reversed(node.value) if k.value == str(part)), None)
            if match is None:
                key = next((k for k, _ in reversed(node.value) if k.value == str(part)), None)
                return key.start_mark.line + 1 if key is not None else line
            node = match
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def parse_rules(text: str, source: str = "<rules>") -> Rules:
    try:
        data = yaml.safe_load(text) or {}
        tree = yaml.compose(text)
    except yaml.YAMLError as error:
        raise RulesError(f"{source}: not valid YAML: {error}") from error
    try:
        rules = Rules.model_validate(data)
    except ValidationError as error:
        messages = []
        for problem in error.errors():
            location = tuple(problem["loc"])
            line = _line_of(tree, location)
            where = ".".join(str(p) for p in location) or "(top level)"
            message = problem["msg"].removeprefix("Value error, ")
            if problem["type"] == "extra_forbidden":
                message = "unknown key; check its spelling against the shipped default.yaml"
            messages.append(f"{source}:{line or '?'}: {where}: {message}")
        raise RulesError("invalid rules\n" + "\n".join(messages)) from None
    problems = cross_reference_problems(rules)
    if problems:
        raise RulesError(
            "invalid rules\n"
            + "\n".join(
                f"{source}:{_line_of(tree, location) or '?'}: "
                f"{'.'.join(str(p) for p in location)}: {message}"
                for location, message in problems
            )
        )
    return rules


def load_rules(path: str | Path | None = None) -> Rules:
    path = Path(path) if path else default_rules_path()
    try:
        text = path.read_text()
    except OSError as error:
        raise RulesError(
            f"cannot read rules file {path}: {error.strerror}. Set FINOPS_CONFIG to an existing "
            "YAML file, or unset it to use the shipped rules."
        ) from error
    return parse_rules(text, str(path))
