"""Synthetic Azure Cost Management exports, in the layout the exports write to a storage container.

Two scopes, so no charge is counted twice:

* ``ea-<enrollment>``: an EA enrollment with a daily month-to-date ActualCost export and an
  AmortizedCost export (gzip CSV, EA column names; the ActualCost file writes dates as the old
  ``M/D/YYYY``, the AmortizedCost file as ISO). Usage on demand and on Spot, usage covered by a
  reservation and by a savings plan (0 in ActualCost, amortized rate in AmortizedCost), the
  commitments' purchases (ActualCost only), their UnusedReservation / UnusedSavingsPlan rows
  (AmortizedCost only), a reservation refund (ActualCost only) and a Marketplace purchase (in
  both). Tags come as JSON, as the legacy braces-less text, or empty. For each commitment and
  month Σ purchase = Σ covered usage + Σ unused, to the cent.
* ``mca-<profile>``: an MCA billing profile with a FocusCost export (Parquet, FOCUS 1.0 names).
* ``mca-<profile2>``: a second MCA billing profile with ActualCost and AmortizedCost cost-details
  exports in MCA's camelCase names (``billingProfileId``, ``billingCurrency``,
  ``costInBillingCurrency``, ISO dates), the same kinds of rows as the EA scope.

The first month is exported twice (run 1, then run 2 with restated usage on a few days); run 1's
files stay on disk as Azure leaves them. Layout::

    <out>/azure/<scope>/<export>/<yyyymmdd-yyyymmdd>/<runId>/part_0_0001.{csv.gz,parquet}
    <out>/azure/<scope>/<export>/<yyyymmdd-yyyymmdd>/<runId>/manifest.json   (written last)

Vectorized with numpy/pyarrow; every value derives from the seed, never from the clock.
"""

from __future__ import annotations

import gzip
import io
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from finops_assets.defs.sources.azure.cost_details import (
    SERVICE_CATEGORIES as AZURE_SERVICE_CATEGORIES,
)
from finops_assets.samples.focus import ENVIRONMENTS, TEAM_COST_CENTER, TEAMS

ENROLLMENT = "100200300"
EA_SCOPE = f"ea-{ENROLLMENT}"
MCA_ACCOUNT = "8a1b2c3d-0000-4000-8000-00000000abcd:5e6f7a8b-0000-4000-8000-00000000cdef_2019-05-31"
MCA_SCOPE = "mca-profile-ABCD-EFGH"
MCA_DETAILS_PROFILE = "IJKL-MNOP-BG7-TGB"
MCA_DETAILS_SCOPE = f"mca-profile-{MCA_DETAILS_PROFILE}"
MCA_DETAILS_SHARE = 0.2  # rows per day in the MCA cost-details exports
EA_CURRENCY, MCA_CURRENCY = "EUR", "USD"
FOCUS_SHARE = 0.3  # rows per day in the FocusCost export
COVERED_SHARE = 0.2  # EA usage rows covered by a commitment (half RI, half SP)
RESERVATION_PER_DAY = 40.0  # amortized reservation cost per day (EUR)
SAVINGS_PLAN_PER_DAY = 25.0
REFUND = -30.0
MARKETPLACE = 12.34
RESTATED_DAYS = 3  # days of the first month whose usage run 2 restates
PART_ROWS = 200_000

_METERS = (  # MeterCategory, MeterSubCategory, MeterName, UnitOfMeasure, PayG price, discount
    ("Virtual Machines", "Dsv5 Series", "D4s v5", "1 Hour", 0.192, 0.85),
    ("Virtual Machines", "Dsv5 Series", "D8s v5", "1 Hour", 0.384, 0.85),
    ("Storage", "Premium SSD Managed Disks", "P10 LRS Disk", "1/Month", 0.0065, 0.9),
    ("Storage", "Tiered Block Blob", "Hot LRS Data Stored", "1 GB/Month", 0.0002, 0.95),
    ("Virtual Network", "Peering", "Intra-Region Ingress", "1 GB", 0.01, 1.0),
    ("Bandwidth", "Rtn Preference: MGN", "Standard Data Transfer Out", "1 GB", 0.087, 1.0),
    ("SQL Database", "General Purpose", "vCore", "1 Hour", 0.5, 0.9),
    ("Azure Monitor", "Log Analytics", "Pay-as-you-go Data Ingestion", "1 GB", 2.3, 1.0),
    ("Event Hubs", "Standard", "Standard Throughput Unit", "1/Day", 0.72, 1.0),
    ("Key Vault", "Standard", "Operations", "10K", 0.03, 1.0),
)
_LOCATIONS = ("westeurope", "northeurope", "eastus")
RESERVATION_ID = (
    "/providers/Microsoft.Capacity/reservationOrders/11111111-2222-4333-8444-555555555555/"
    "reservations/66666666-7777-4888-8999-000000000000"
)
MCA_RESERVATION_ID = (
    "/providers/Microsoft.Capacity/reservationOrders/22222222-3333-4444-8555-666666666666/"
    "reservations/77777777-8888-4999-8000-111111111111"
)
MCA_SAVINGS_PLAN_ID = (
    "/providers/Microsoft.BillingBenefits/savingsPlanOrders/bbbbbbbb-cccc-4ddd-8eee-ffffffffffff/"
    "savingsPlans/00000000-1111-4222-8333-444444444444"
)
SAVINGS_PLAN_ID = (
    "/providers/Microsoft.BillingBenefits/savingsPlanOrders/aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee/"
    "savingsPlans/ffffffff-0000-4111-8222-333333333333"
)


@dataclass
class AzureSampleSummary:
    runs: list[str] = field(default_factory=list)  # run folders, relative to out
    rows_by_run: dict[str, int] = field(default_factory=dict)
    restated_days: list[date] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows_by_run.values())


def _months(start: date, days: int) -> list[tuple[date, date]]:
    """(first, last) generated day per calendar month."""
    end = start + timedelta(days=days - 1)
    months, first = [], start
    while first <= end:
        next_month = (first.replace(day=1) + timedelta(days=32)).replace(day=1)
        last = min(end, next_month - timedelta(days=1))
        months.append((first, last))
        first = last + timedelta(days=1)
    return months


def _range_folder(first: date) -> str:
    month_start = first.replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return f"{month_start:%Y%m%d}-{month_end:%Y%m%d}"


def _guid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _tags(rng: np.random.Generator, n: int) -> np.ndarray:
    """One in five rows untagged, the rest JSON or the legacy braces-less text (half each)."""
    team = np.asarray(TEAMS)[rng.integers(0, len(TEAMS), n)]
    env = np.asarray(ENVIRONMENTS)[rng.integers(0, len(ENVIRONMENTS), n)]
    cost_center = np.vectorize(TEAM_COST_CENTER.get, otypes=[object])(team)
    body = np.char.add(
        np.char.add(np.char.add('"team": "', team.astype(str)), '","env": "'), env.astype(str)
    )
    body = np.char.add(
        np.char.add(np.char.add(body, '","CostCenter": "'), cost_center.astype(str)), '"'
    )
    form = rng.random(n)
    out = np.where(form < 0.4, np.char.add(np.char.add("{", body), "}"), body).astype(object)
    out[form >= 0.8] = ""
    return out


def _mdy(days: np.ndarray) -> np.ndarray:
    """datetime64[D] -> 'M/D/YYYY' text (old EA CSV dates)."""
    years = days.astype("datetime64[Y]")
    months = days.astype("datetime64[M]")
    y = years.astype(int) + 1970
    m = (months - years).astype(int) + 1
    d = (days - months).astype(int) + 1
    return np.char.add(
        np.char.add(np.char.add(np.char.add(m.astype(str), "/"), d.astype(str)), "/"), y.astype(str)
    ).astype(object)


def _round(values: np.ndarray, places: int = 6) -> np.ndarray:
    return np.round(values, places)


def _ea_month(
    rng: np.random.Generator,
    first: date,
    last: date,
    rows_per_day: int,
    subscriptions: list[str],
    reservation_id: str = RESERVATION_ID,
    savings_plan_id: str = SAVINGS_PLAN_ID,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Columns of the ActualCost and AmortizedCost exports of one month (same usage rows), for
    one scope's reservation and savings plan."""
    n_days = (last - first).days + 1
    per_day = max(4, rows_per_day)
    n = per_day * n_days
    day = np.repeat(np.arange(n_days), per_day)
    dates = np.datetime64(first.isoformat(), "D") + day
    meter = rng.integers(0, len(_METERS), n)
    category = np.asarray([m[0] for m in _METERS], dtype=object)[meter]
    payg = np.asarray([m[4] for m in _METERS])[meter]
    discount = np.asarray([m[5] for m in _METERS])[meter]
    quantity = _round(rng.gamma(2.0, 6.0, n), 6)
    unit_price = _round(payg * discount, 6)
    # Covered usage: each day's first row is reservation-covered and its second savings-plan-
    # covered (so every day has both), plus a random share of the others.
    covered_draw = rng.random(n)
    position = np.arange(n) % per_day
    reserved = ((covered_draw < COVERED_SHARE / 2) & (position > 1)) | (position == 0)
    plan = ((covered_draw > 1 - COVERED_SHARE / 2) & (position > 1)) | (position == 1)
    spot = (category == "Virtual Machines") & (rng.random(n) < 0.1) & ~reserved & ~plan
    pricing = np.where(reserved, "Reservation", np.where(plan, "SavingsPlan", "OnDemand"))
    pricing = np.where(spot, "Spot", pricing).astype(object)
    on_demand_cost = _round(quantity * unit_price * np.where(spot, 0.3, 1.0), 6)

    # Amortized cost of covered rows: each day's commitment share times utilization, split over
    # the day's covered rows by random weights; the last covered row of a day takes the rounding.
    amortized = on_demand_cost.copy()
    unused = {}
    for mask, per_day_amount, name in (
        (reserved, RESERVATION_PER_DAY, "UnusedReservation"),
        (plan, SAVINGS_PLAN_PER_DAY, "UnusedSavingsPlan"),
    ):
        utilization = np.round(rng.uniform(0.7, 0.98, n_days), 2)
        used = np.round(per_day_amount * utilization, 2)
        weights = np.where(mask, rng.random(n) + 0.1, 0.0)
        totals = np.bincount(day, weights=weights, minlength=n_days)
        share = _round(np.where(mask, weights / totals[day] * used[day], 0.0), 6)
        residual = used - np.bincount(day, weights=share, minlength=n_days)
        last_index = np.flatnonzero(mask)
        last_per_day = np.zeros(n_days, dtype=int)
        last_per_day[day[last_index]] = last_index  # the last covered row of each day
        share[last_per_day] = _round(share[last_per_day] + residual, 6)
        amortized = np.where(mask, share, amortized)
        unused[name] = np.round(per_day_amount - used, 2)

    sub_index = rng.integers(0, len(subscriptions), n)
    location = np.asarray(_LOCATIONS, dtype=object)[rng.integers(0, len(_LOCATIONS), n)]
    resource_group = np.char.add("rg-", np.asarray(TEAMS)[rng.integers(0, len(TEAMS), n)]).astype(
        object
    )
    resource_name = np.char.add("res-", rng.integers(0, 500, n).astype(str)).astype(object)
    subs = np.asarray(subscriptions, dtype=object)[sub_index]
    resource_id = (
        "/subscriptions/"
        + subs
        + "/resourceGroups/"
        + resource_group
        + "/providers/Microsoft.Compute/virtualMachines/"
        + resource_name
    )
    benefit = np.where(reserved, reservation_id, np.where(plan, savings_plan_id, "")).astype(object)
    usage = {
        "Date": dates,
        "SubscriptionId": subs,
        "SubscriptionName": np.char.add("sub-", (sub_index + 1).astype(str)).astype(object),
        "ResourceGroup": resource_group,
        "ResourceLocation": location,
        "ResourceId": resource_id,
        "ResourceName": resource_name,
        "MeterCategory": category,
        "MeterSubCategory": np.asarray([m[1] for m in _METERS], dtype=object)[meter],
        "MeterName": np.asarray([m[2] for m in _METERS], dtype=object)[meter],
        "MeterId": np.asarray([f"meter-{i:04d}" for i in range(len(_METERS))], dtype=object)[meter],
        "UnitOfMeasure": np.asarray([m[3] for m in _METERS], dtype=object)[meter],
        "Quantity": quantity,
        "PayGPrice": payg,
        "UnitPrice": unit_price,
        "ChargeType": np.full(n, "Usage", dtype=object),
        "Frequency": np.full(n, "UsageBased", dtype=object),
        "PricingModel": pricing,
        "BenefitId": benefit,
        "BenefitName": np.where(reserved, "ri-d4s-v5", np.where(plan, "sp-compute", "")).astype(
            object
        ),
        "ReservationId": np.where(reserved, reservation_id.rsplit("/", 1)[1], "").astype(object),
        "Tags": _tags(rng, n),
    }
    actual = {**usage, "CostInBillingCurrency": np.where(reserved | plan, 0.0, on_demand_cost)}
    amortized_cols = {**usage, "CostInBillingCurrency": amortized}
    actual["EffectivePrice"] = _round(np.where(reserved | plan, 0.0, unit_price), 6)
    amortized_cols["EffectivePrice"] = _round(
        np.where(quantity > 0, amortized / np.maximum(quantity, 1e-9), 0.0), 6
    )

    day_list = np.datetime64(first.isoformat(), "D") + np.arange(n_days)
    extra_actual = _extra_rows(
        [
            # Commitments bill once a month for the month's generated days.
            (
                day_list[0],
                "Purchase",
                "Reservation",
                RESERVATION_PER_DAY * n_days,
                reservation_id,
                "ri-d4s-v5",
                "Recurring",
            ),
            (
                day_list[0],
                "Purchase",
                "SavingsPlan",
                SAVINGS_PLAN_PER_DAY * n_days,
                savings_plan_id,
                "sp-compute",
                "Recurring",
            ),
            (
                day_list[min(14, n_days - 1)],
                "Refund",
                "Reservation",
                REFUND,
                reservation_id,
                "ri-d4s-v5",
                "OneTime",
            ),
            (day_list[0], "Purchase", "OnDemand", MARKETPLACE, "", "", "OneTime"),
        ],
        subscriptions[0],
    )
    extra_amortized = _extra_rows(
        [
            (
                d,
                "UnusedReservation",
                "Reservation",
                float(a),
                reservation_id,
                "ri-d4s-v5",
                "UsageBased",
            )
            for d, a in zip(day_list, unused["UnusedReservation"], strict=True)
            if a > 0
        ]
        + [
            (
                d,
                "UnusedSavingsPlan",
                "SavingsPlan",
                float(a),
                savings_plan_id,
                "sp-compute",
                "UsageBased",
            )
            for d, a in zip(day_list, unused["UnusedSavingsPlan"], strict=True)
            if a > 0
        ]
        + [(day_list[0], "Purchase", "OnDemand", MARKETPLACE, "", "", "OneTime")],
        subscriptions[0],
    )
    return _concat(actual, extra_actual), _concat(amortized_cols, extra_amortized)


def _extra_rows(rows: list[tuple], subscription: str) -> dict[str, np.ndarray]:
    """Commitment purchases, refunds, unused rows and the Marketplace purchase (a handful)."""
    n = len(rows)
    dates, charge, model, cost, benefit, name, frequency = (
        (list(c) for c in zip(*rows, strict=True)) if rows else ([],) * 7
    )
    marketplace = np.asarray([m == "OnDemand" for m in model])
    return {
        "Date": np.asarray(dates, dtype="datetime64[D]"),
        "SubscriptionId": np.full(n, subscription, dtype=object),
        "SubscriptionName": np.full(n, "sub-1", dtype=object),
        "ResourceGroup": np.full(n, "", dtype=object),
        "ResourceLocation": np.full(n, "", dtype=object),
        "ResourceId": np.full(n, "", dtype=object),
        "ResourceName": np.full(n, "", dtype=object),
        "MeterCategory": np.where(marketplace, "Marketplace", "").astype(object),
        "MeterSubCategory": np.full(n, "", dtype=object),
        "MeterName": np.full(n, "", dtype=object),
        "MeterId": np.full(n, "", dtype=object),
        "UnitOfMeasure": np.full(n, "1", dtype=object),
        "Quantity": np.ones(n),
        "PayGPrice": np.asarray(cost, dtype=float),
        "UnitPrice": np.asarray(cost, dtype=float),
        "ChargeType": np.asarray(charge, dtype=object),
        "Frequency": np.asarray(frequency, dtype=object),
        "PricingModel": np.asarray(model, dtype=object),
        "BenefitId": np.asarray(benefit, dtype=object),
        "BenefitName": np.asarray(name, dtype=object),
        "ReservationId": np.asarray(
            [b.rsplit("/", 1)[1] if "Capacity" in b else "" for b in benefit], dtype=object
        ),
        # Central platform purchases carry the platform owner's tags.
        "Tags": np.full(n, '{"team": "data-platform", "env": "prod"}', dtype=object),
        "CostInBillingCurrency": np.round(np.asarray(cost, dtype=float), 2),
        "EffectivePrice": np.asarray(cost, dtype=float),
    }


def _concat(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def _ea_table(columns: dict[str, np.ndarray], first: date, mdy_dates: bool) -> pa.Table:
    month_start = np.datetime64(first.replace(day=1).isoformat(), "D")
    month_end = (month_start.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1
    n = len(columns["Date"])
    dates = columns["Date"].astype("datetime64[D]")
    as_text = _mdy if mdy_dates else (lambda d: np.datetime_as_string(d, unit="D").astype(object))
    data = {
        "InvoiceSectionName": np.full(n, "Engineering", dtype=object),
        "AccountName": np.full(n, "finops@example.com", dtype=object),
        "SubscriptionId": columns["SubscriptionId"],
        "SubscriptionName": columns["SubscriptionName"],
        "ResourceGroup": columns["ResourceGroup"],
        "ResourceLocation": columns["ResourceLocation"],
        "Date": as_text(dates),
        "ProductName": columns["MeterName"],
        "MeterCategory": columns["MeterCategory"],
        "MeterSubCategory": columns["MeterSubCategory"],
        "MeterId": columns["MeterId"],
        "MeterName": columns["MeterName"],
        "UnitOfMeasure": columns["UnitOfMeasure"],
        "Quantity": columns["Quantity"],
        "EffectivePrice": columns["EffectivePrice"],
        "CostInBillingCurrency": columns["CostInBillingCurrency"],
        "ResourceId": columns["ResourceId"],
        "ResourceName": columns["ResourceName"],
        "Tags": columns["Tags"],
        "ReservationId": columns["ReservationId"],
        "UnitPrice": columns["UnitPrice"],
        "ChargeType": columns["ChargeType"],
        "Frequency": columns["Frequency"],
        "PricingModel": columns["PricingModel"],
        "BillingAccountId": np.full(n, ENROLLMENT, dtype=object),
        "BillingAccountName": np.full(n, "Example Corp", dtype=object),
        "BillingCurrencyCode": np.full(n, EA_CURRENCY, dtype=object),
        "BillingPeriodStartDate": as_text(np.full(n, month_start)),
        "BillingPeriodEndDate": as_text(np.full(n, month_end)),
        "PayGPrice": columns["PayGPrice"],
        "benefitId": columns["BenefitId"],
        "benefitName": columns["BenefitName"],
    }
    return pa.table({k: pa.array(v) for k, v in data.items()})


def _mca_table(columns: dict[str, np.ndarray], first: date) -> pa.Table:
    """The same cost-details rows as an MCA billing profile writes them: camelCase names, billing
    profile and invoice section ids, no enrollment, ISO dates."""
    ea = _ea_table(columns, first, False)
    n = ea.num_rows
    renamed = {
        ("billingCurrency" if name == "BillingCurrencyCode" else name[0].lower() + name[1:]): (
            ea.column(name)
        )
        for name in ea.column_names
        if name not in ("AccountName",)
    }
    renamed.update(
        {
            "billingAccountId": pa.array(np.full(n, MCA_ACCOUNT, dtype=object)),
            "billingAccountName": pa.array(np.full(n, "Example Corp MCA", dtype=object)),
            "billingProfileId": pa.array(np.full(n, MCA_DETAILS_PROFILE, dtype=object)),
            "billingProfileName": pa.array(np.full(n, "Research", dtype=object)),
            "invoiceSectionId": pa.array(np.full(n, "RSRC-AAAA-PJA-TGB", dtype=object)),
            "billingCurrency": pa.array(np.full(n, MCA_CURRENCY, dtype=object)),
            "paygCostInBillingCurrency": pa.array(
                _round(
                    np.asarray(columns["Quantity"], dtype=float)
                    * np.asarray(columns["PayGPrice"], dtype=float),
                    6,
                )
            ),
        }
    )
    return pa.table(renamed)


def _focus_table(rng: np.random.Generator, first: date, last: date, rows_per_day: int) -> pa.Table:
    """A FocusCost export month (FOCUS 1.0 names, as Azure writes them), on-demand usage only."""
    n_days = (last - first).days + 1
    n = max(1, rows_per_day) * n_days
    day = np.repeat(np.arange(n_days), max(1, rows_per_day))
    start = (np.datetime64(first.isoformat(), "D") + day).astype("datetime64[us]")
    meter = rng.integers(0, len(_METERS), n)
    quantity = _round(rng.gamma(2.0, 6.0, n), 6)
    payg = np.asarray([m[4] for m in _METERS])[meter]
    cost = _round(quantity * payg * 0.9, 6)
    month_start = np.datetime64(first.replace(day=1).isoformat(), "D")
    month_end = (month_start.astype("datetime64[M]") + 1).astype("datetime64[us]")
    month_start = month_start.astype("datetime64[us]")
    tags = _tags(rng, n)
    json_tags = np.where(
        tags == "",
        "{}",
        np.where(np.char.startswith(tags.astype(str), "{"), tags, "{" + tags + "}"),
    )
    category = np.asarray([m[0] for m in _METERS], dtype=object)[meter]
    meter_name = np.asarray([m[2] for m in _METERS], dtype=object)[meter]
    unit = np.asarray([m[3] for m in _METERS], dtype=object)[meter]
    # Microsoft assigns one FOCUS category per service: the same one our cost-details mapping uses.
    service_category = np.vectorize(
        lambda c: AZURE_SERVICE_CATEGORIES.get(c.lower(), "Other"), otypes=[object]
    )(category)
    utc = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "BilledCost": pa.array(cost),
            "BillingAccountId": pa.array(np.full(n, MCA_ACCOUNT, dtype=object)),
            "BillingAccountName": pa.array(np.full(n, "Example Corp MCA", dtype=object)),
            "BillingCurrency": pa.array(np.full(n, MCA_CURRENCY, dtype=object)),
            "BillingPeriodStart": pa.array(np.full(n, month_start), type=utc),
            "BillingPeriodEnd": pa.array(np.full(n, month_end), type=utc),
            "ChargeCategory": pa.array(np.full(n, "Usage", dtype=object)),
            "ChargeDescription": pa.array(meter_name),
            "ChargeFrequency": pa.array(np.full(n, "Usage-Based", dtype=object)),
            "ChargePeriodStart": pa.array(start, type=utc),
            "ChargePeriodEnd": pa.array(start + np.timedelta64(1, "D"), type=utc),
            "ConsumedQuantity": pa.array(quantity),
            "ContractedCost": pa.array(cost),
            "EffectiveCost": pa.array(cost),
            "InvoiceIssuerName": pa.array(np.full(n, "Microsoft", dtype=object)),
            "ListCost": pa.array(_round(quantity * payg, 6)),
            "PricingCategory": pa.array(np.full(n, "Standard", dtype=object)),
            "PricingQuantity": pa.array(quantity),
            "PricingUnit": pa.array(unit),
            "ConsumedUnit": pa.array(unit),
            "ProviderName": pa.array(np.full(n, "Microsoft", dtype=object)),
            "PublisherName": pa.array(np.full(n, "Microsoft", dtype=object)),
            "RegionId": pa.array(np.asarray(_LOCATIONS, dtype=object)[rng.integers(0, 3, n)]),
            "ServiceCategory": pa.array(service_category),
            "ServiceName": pa.array(category),
            "SubAccountId": pa.array(
                np.full(n, "/subscriptions/0f0f0f0f-1111-4222-8333-444444444444", dtype=object)
            ),
            "Tags": pa.array(json_tags.astype(object)),
            "x_SkuMeterCategory": pa.array(category),
        }
    )


def _write_run(
    out: Path,
    scope: str,
    export: str,
    export_type: str,
    first: date,
    run_id: str,
    submitted: str,
    table: pa.Table,
    fmt: str,
    summary: AzureSampleSummary,
) -> None:
    range_folder = _range_folder(first)
    folder = out / "azure" / scope / export / range_folder / run_id
    folder.mkdir(parents=True, exist_ok=True)
    blobs = []
    for index, offset in enumerate(range(0, max(1, table.num_rows), PART_ROWS)):
        part = table.slice(offset, PART_ROWS)
        if fmt == "parquet":
            name = f"part_0_{index + 1:04d}.parquet"
            pq.write_table(part, folder / name)
        else:
            name = f"part_0_{index + 1:04d}.csv.gz"
            buffer = io.BytesIO()
            pacsv.write_csv(part, buffer)
            (folder / name).write_bytes(gzip.compress(buffer.getvalue(), compresslevel=1, mtime=0))
        blobs.append(
            {
                "blobName": f"exports/{export}/{range_folder}/{run_id}/{name}",
                "dataRowCount": part.num_rows,
            }
        )
    manifest = {
        "manifestVersion": "2024-04-01",
        "byteCount": sum((folder / b["blobName"].rsplit("/", 1)[1]).stat().st_size for b in blobs),
        "blobCount": len(blobs),
        "dataRowCount": None,  # newer manifests leave it null: the loader counts rows itself
        "exportConfig": {
            "exportName": export,
            "resourceId": f"/providers/Microsoft.Billing/billingAccounts/{scope}/providers/Microsoft.CostManagement/exports/{export}",
            "dataVersion": "1.0r2" if export_type == "FocusCost" else "2021-10-01",
            "type": export_type,
            "timeFrame": "MonthToDate",
            "granularity": "Daily",
        },
        "deliveryConfig": {
            "fileFormat": "Parquet" if fmt == "parquet" else "Csv",
            "compressData": "Gzip" if fmt != "parquet" else "None",
        },
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": submitted,
            "runId": run_id,
            "startDate": f"{first.replace(day=1).isoformat()}T00:00:00",
            "endDate": f"{first.replace(day=1).isoformat()}T00:00:00",
        },
        "blobs": blobs,
    }
    manifest["runInfo"]["endDate"] = (
        f"{range_folder[9:13]}-{range_folder[13:15]}-{range_folder[15:17]}T00:00:00"
    )
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    relative = folder.relative_to(out).as_posix()
    summary.runs.append(relative)
    summary.rows_by_run[relative] = table.num_rows


def generate_azure_cost(
    out: Path, start: date, days: int, rows_per_day: int, seed: int
) -> AzureSampleSummary:
    """Write the exports of ``days`` charge days from ``start`` (about ``rows_per_day`` rows per
    day over both scopes) and return what was written."""
    began = time.perf_counter()
    out = Path(out)
    rng = np.random.default_rng([seed, 6])
    summary = AzureSampleSummary()
    subscriptions = [_guid(rng) for _ in range(4)]
    mca_subscriptions = [_guid(rng) for _ in range(2)]
    focus_rows = max(1, int(rows_per_day * FOCUS_SHARE))
    mca_rows = max(4, int(rows_per_day * MCA_DETAILS_SHARE))
    ea_rows = max(4, rows_per_day - focus_rows - mca_rows)
    for month_index, (first, last) in enumerate(_months(start, days)):
        month_rng = np.random.default_rng([seed, 6, month_index])
        actual, amortized = _ea_month(month_rng, first, last, ea_rows, subscriptions)
        next_month = (first.replace(day=1) + timedelta(days=32)).replace(day=1)
        submitted = f"{next_month.isoformat()}T06:00:00Z"
        runs = [("run-2" if month_index == 0 else "run-1", submitted, actual, amortized)]
        if month_index == 0:
            # Run 1 was exported earlier with lower on-demand usage on the first days.
            restated = np.datetime64(first.isoformat(), "D") + np.arange(RESTATED_DAYS)
            summary.restated_days = [
                first + timedelta(days=i) for i in range(min(RESTATED_DAYS, days))
            ]
            old = []
            for cols in (actual, amortized):
                on_demand = (cols["ChargeType"] == "Usage") & (cols["PricingModel"] == "OnDemand")
                scale = np.where(
                    on_demand & np.isin(cols["Date"].astype("datetime64[D]"), restated), 0.9, 1.0
                )
                old.append(
                    {
                        **cols,
                        "CostInBillingCurrency": _round(cols["CostInBillingCurrency"] * scale, 6),
                    }
                )
            runs.insert(0, ("run-1", f"{(last - timedelta(days=1)).isoformat()}T06:00:00Z", *old))
        for run_name, when, actual_cols, amortized_cols in runs:
            run_rng = np.random.default_rng([seed, 6, month_index, int(run_name[-1])])
            run_id = _guid(run_rng)
            _write_run(
                out,
                EA_SCOPE,
                "daily-actual",
                "ActualCost",
                first,
                run_id,
                when,
                _ea_table(actual_cols, first, True),
                "csv",
                summary,
            )
            _write_run(
                out,
                EA_SCOPE,
                "daily-amortized",
                "AmortizedCost",
                first,
                run_id + "-a",
                when,
                _ea_table(amortized_cols, first, False),
                "csv",
                summary,
            )
        # The second MCA profile: one run per month, its own rows and commitments.
        mca_rng = np.random.default_rng([seed, 7, month_index])
        mca_actual, mca_amortized = _ea_month(
            mca_rng,
            first,
            last,
            mca_rows,
            mca_subscriptions,
            reservation_id=MCA_RESERVATION_ID,
            savings_plan_id=MCA_SAVINGS_PLAN_ID,
        )
        mca_run = _guid(mca_rng)
        for export, export_type, cols, run_id in (
            ("daily-actual", "ActualCost", mca_actual, mca_run),
            ("daily-amortized", "AmortizedCost", mca_amortized, mca_run + "-a"),
        ):
            _write_run(
                out,
                MCA_DETAILS_SCOPE,
                export,
                export_type,
                first,
                run_id,
                submitted,
                _mca_table(cols, first),
                "csv",
                summary,
            )
        focus = _focus_table(month_rng, first, last, focus_rows)
        run_id = str(uuid.UUID(bytes=month_rng.bytes(16), version=4))
        _write_run(
            out,
            MCA_SCOPE,
            "focus-daily",
            "FocusCost",
            first,
            run_id,
            submitted,
            focus,
            "parquet",
            summary,
        )
    summary.seconds = time.perf_counter() - began
    return summary
