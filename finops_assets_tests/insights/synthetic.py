"""A small allocated-costs table for insight tests: four usage lines (two teams, three sources,
two currencies) with a weekday shape and 3% noise, plus whatever a test adds."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np

# (team, ServiceName, ResourceId, x_Source, currency, daily level)
LINES = [
    ("payments", "Amazon EC2", "i-pay-1", "aws_cur", "USD", 900.0),
    ("payments", "Amazon S3", "pay-bucket", "aws_cur", "USD", 300.0),
    ("search", "Compute Engine", "vm-search", "gcp_billing", "USD", 700.0),
    ("search", "Virtual Machines", "vm-eu", "azure_cost", "EUR", 500.0),
]


def frame(rng, start: date, days: int, spikes=(), extra=()):
    """One usage row per line and day, plus ``spikes`` (day index, ResourceId, amount added) and
    ``extra`` rows (charge_date, currency, cost, category, source, team, service, resource)."""
    rows = []
    for i in range(days):
        day = start + timedelta(days=i)
        weekday = 0.7 if day.weekday() >= 5 else 1.0
        for team, service, resource, source, currency, level in LINES:
            cost = level * weekday * float(np.exp(rng.normal(0, 0.03)))
            for at, res, amount in spikes:
                if at == i and res == resource:
                    cost += amount
            rows.append((day, currency, round(cost, 2), "Usage", source, team, service, resource))
    rows += list(extra)
    return rows


def create_table(con: duckdb.DuckDBPyConnection, table: str, rows) -> None:
    """``table`` with the allocated-costs columns the insights read."""
    if "." in table:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
    con.execute(
        f"""CREATE TABLE {table} (charge_date DATE, BillingCurrency VARCHAR,
            EffectiveCost DECIMAL(18, 6), ChargeCategory VARCHAR, x_Source VARCHAR,
            team VARCHAR, ServiceName VARCHAR, ResourceId VARCHAR,
            ServiceCategory VARCHAR DEFAULT 'Compute', SubAccountId VARCHAR DEFAULT 'acct-1',
            RegionId VARCHAR DEFAULT 'us-east-1', ProviderName VARCHAR DEFAULT 'Cloud',
            cost_center VARCHAR DEFAULT 'cc-1', ChargeFrequency VARCHAR DEFAULT 'Usage-Based',
            x_AmortizationClass VARCHAR, BilledCost DECIMAL(18, 6), Tags VARCHAR DEFAULT '{{}}')"""
    )
    con.executemany(
        f"INSERT INTO {table} (charge_date, BillingCurrency, EffectiveCost, ChargeCategory, "
        "x_Source, team, ServiceName, ResourceId) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    con.execute(f"UPDATE {table} SET BilledCost = EffectiveCost")
    con.execute(
        f"UPDATE {table} SET ChargeFrequency = CASE ChargeCategory WHEN 'Purchase' THEN "
        "'One-Time' WHEN 'Credit' THEN 'Recurring' ELSE 'Usage-Based' END"
    )
