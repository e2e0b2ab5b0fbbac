"""Google Cloud Billing export (BigQuery standard or detailed usage cost table) to typed raw rows
and to FOCUS 1.2, as DuckDB SQL text; plus the parameterized BigQuery query for teams that read
the export table directly.

The export arrives with nested columns (``service{id,description}``, ``project{..., labels[],
ancestors[]}``, ``labels[{key,value}]``, ``tags[{key,value,inherited,namespace}]``,
``credits[{name,amount,full_name,id,type}]``, ``invoice{month}``, ``adjustment_info{...}``, and
in the detailed export ``resource{name,global_name}``). DuckDB reads them natively from Parquet or
Arrow, and from newline-delimited JSON with the export's documented schema (``EXPORT_SCHEMA``);
``gcp_staging_select`` flattens the scalar fields into typed columns and keeps the lists as
typed lists (credit amounts become exact decimals; a credit amount that is not a number fails the
load), so every later step stays vectorized SQL.

Rules chosen where the export leaves room (DOMAIN §5):

* One FOCUS row per export row. Credits stay on the row that earned them (allocation keeps them
  with the project and labels of the usage) and are netted into the cost:
  BilledCost = EffectiveCost = ``cost + Σ credits.amount`` (credits are negative), except
  PROMOTION credits under the ``payment`` policy (below). The credits themselves are kept as JSON
  in ``x_Credits`` and the promotion amount in ``x_PromotionCredits``.
* PROMOTION policy (rules ``gcp.promotion_credits``), recorded per row at load time in
  ``x_PromotionPolicy`` so the FOCUS mapping and the reconciliation basis read the same policy:
  ``discount`` (default): promotional credits reduce BilledCost and EffectiveCost like every other
  credit, so Σ BilledCost is the invoice's amount due. ``payment``: promotional credits are a
  means of paying the invoice (like a prepaid balance), not a lower price: BilledCost and
  EffectiveCost exclude them (they are the cost of the consumption, whoever pays it), and Σ
  BilledCost is the invoice subtotal before "promotions and others". Every other credit type
  (committed use, sustained use, free tier, discount, reseller margin, ...) always reduces cost.
* ChargeCategory from ``cost_type``: regular → Usage (Purchase for committed-use fee SKUs, whose
  description starts with "Commitment"); tax → Tax; adjustment → Credit when its
  ``adjustment_info.type`` is goodwill or an SLA credit, else Adjustment; rounding_error →
  Adjustment; an unknown cost_type → Usage at its net cost, flagged ``x_UnknownLineItemType``.
  ChargeClass is Correction on an adjustment billed in a later invoice month than its usage (it
  fixes a previously invoiced period). Negative amounts are kept as they are: never clamped.
* Committed use discounts: a Usage row carrying a COMMITTED_USAGE_DISCOUNT(_DOLLAR_BASE) credit
  gets CommitmentDiscountId = the credit's id (else full name, else name), Type 'Committed Use
  Discount', Category Usage (resource-based) or Spend (dollar-based), Status Used, and
  PricingCategory Committed. Fee rows are Purchase with Recurring frequency; the export does not
  link them to a commitment id, so their commitment columns stay empty.
* Tags = JSON object of the row's resource labels plus its own (not inherited) tags, keys exactly
  as exported; a tag whose key a label already has is dropped (the label wins), and among tags of
  the same key the first wins. Project labels, inherited tags, system labels and project
  ancestors keep their own ``x_`` columns for the allocation's inheritance rungs.
* The charge day is the UTC date of ``usage_start_time``; the billing period is ``invoice.month``
  (reconciliation is per invoice month). BillingAccountId stays the export's text id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from finops_assets.lib.facts import FactSource
from finops_assets.lib.focus import FOCUS_COLUMNS, MONEY, QUANTITY, TEXT, TIMESTAMP
from finops_assets.lib.loading import sql_literal
from finops_assets.lib.warehouse import quote_identifier as q
from finops_assets.lib.warehouse import utc_date, utc_instant, utc_naive

PROMOTION_POLICIES = ("discount", "payment")
RATE = "DECIMAL(38, 12)"
KEY_VALUE_LIST = "STRUCT(key VARCHAR, value VARCHAR)[]"
TAG_LIST = "STRUCT(key VARCHAR, value VARCHAR, inherited BOOLEAN, namespace VARCHAR)[]"
CREDIT_LIST = f"STRUCT(name VARCHAR, amount {MONEY}, full_name VARCHAR, id VARCHAR, type VARCHAR)[]"
COMMITMENT_CREDIT_TYPES = ("COMMITTED_USAGE_DISCOUNT", "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE")
COST_TYPES = ("regular", "tax", "adjustment", "rounding_error")
GOODWILL_ADJUSTMENT_TYPES = ("GOODWILL", "SALES_BASED_GOODWILL", "SLA_VIOLATION")
LINEAGE_PASSTHROUGH = ("x_DeliveryId", "x_SourceFile")

# raw.gcp_billing columns -> DuckDB type (before the loader's x_ columns and charge_date).
RAW_GCP_COLUMNS: dict[str, str] = {
    "billing_account_id": TEXT,
    "service_id": TEXT,
    "service_description": TEXT,
    "sku_id": TEXT,
    "sku_description": TEXT,
    "usage_start_time": TIMESTAMP,
    "usage_end_time": TIMESTAMP,
    "project_id": TEXT,
    "project_number": TEXT,
    "project_name": TEXT,
    "project_labels": KEY_VALUE_LIST,
    "project_ancestors": TEXT,  # JSON array of {resource_name, display_name}
    "labels": KEY_VALUE_LIST,
    "system_labels": KEY_VALUE_LIST,
    "tags": TAG_LIST,
    "location_location": TEXT,
    "location_country": TEXT,
    "location_region": TEXT,
    "location_zone": TEXT,
    "resource_name": TEXT,  # detailed export only
    "resource_global_name": TEXT,  # detailed export only
    "usage_amount": QUANTITY,
    "usage_unit": TEXT,
    "usage_amount_in_pricing_units": QUANTITY,
    "usage_pricing_unit": TEXT,
    "cost": MONEY,
    "cost_at_list": MONEY,
    "currency": TEXT,
    "currency_conversion_rate": RATE,
    "credits": CREDIT_LIST,
    "invoice_month": TEXT,  # YYYYMM
    "cost_type": TEXT,
    "adjustment_id": TEXT,
    "adjustment_description": TEXT,
    "adjustment_mode": TEXT,
    "adjustment_type": TEXT,
    "export_time": TIMESTAMP,
    # discount | payment: the PROMOTION policy the row was loaded under (rules gcp.promotion_credits)
    "x_PromotionPolicy": TEXT,
}

# Without these a row's money cannot be placed (who, what, when, how much, which invoice).
REQUIRED_COLUMNS = (
    "billing_account_id",
    "service",
    "sku",
    "usage_start_time",
    "usage_end_time",
    "cost",
    "currency",
    "credits",
    "invoice",
    "export_time",
)

# service.description (lower-case) -> FOCUS ServiceCategory; anything else is 'Other'.
_SERVICE_CATEGORIES: dict[str, str] = {
    **dict.fromkeys(
        (
            "compute engine",
            "kubernetes engine",
            "cloud run",
            "cloud functions",
            "app engine",
            "vmware engine",
            "batch",
        ),
        "Compute",
    ),
    **dict.fromkeys(
        ("cloud storage", "filestore", "backup and dr service", "persistent disk"), "Storage"
    ),
    **dict.fromkeys(
        (
            "cloud sql",
            "cloud spanner",
            "cloud bigtable",
            "cloud firestore",
            "firestore",
            "cloud memorystore for redis",
            "memorystore for redis",
            "alloydb",
            "datastore",
        ),
        "Databases",
    ),
    **dict.fromkeys(
        (
            "networking",
            "cloud dns",
            "cloud cdn",
            "cloud load balancing",
            "cloud nat",
            "cloud interconnect",
            "cloud vpn",
        ),
        "Networking",
    ),
    **dict.fromkeys(
        ("bigquery", "dataflow", "dataproc", "cloud composer", "looker", "cloud data fusion"),
        "Analytics",
    ),
    **dict.fromkeys(
        ("vertex ai", "cloud vision api", "cloud speech api", "gemini api", "cloud translate"),
        "AI and Machine Learning",
    ),
    **dict.fromkeys(("cloud pub/sub", "cloud tasks", "cloud scheduler", "eventarc"), "Integration"),
    **dict.fromkeys(
        ("cloud logging", "cloud monitoring", "cloud trace", "stackdriver logging", "support"),
        "Management and Governance",
    ),
    **dict.fromkeys(
        (
            "secret manager",
            "cloud key management service (kms)",
            "security command center",
            "cloud armor",
        ),
        "Security",
    ),
    **dict.fromkeys(
        ("artifact registry", "cloud build", "cloud source repositories"), "Developer Tools"
    ),
    **dict.fromkeys(("identity platform", "cloud identity"), "Identity"),
}


class GcpFormatError(ValueError):
    """The file is not a usable GCP billing export: the message names the columns and the fix."""


# ----------------------------------------------------------------------------------------------
# Reading DuckDB's type text of nested columns


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if current:
        parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def struct_fields(type_text: str) -> dict[str, str]:
    """Top-level fields of a DuckDB STRUCT type text (or of a list of structs) -> their types."""
    text = type_text.strip()
    while text.endswith("[]"):
        text = text[:-2]
    if not text.upper().startswith("STRUCT(") or not text.endswith(")"):
        return {}
    fields = {}
    for part in _split_top_level(text[len("STRUCT(") : -1]):
        if part.startswith('"'):
            end = part.index('"', 1)
            name, rest = part[1:end], part[end + 1 :]
        else:
            name, _, rest = part.partition(" ")
        fields[name.lower()] = rest.strip()
    return fields


def missing_columns(described: Mapping[str, str]) -> list[str]:
    present = {c.lower() for c in described}
    return [c for c in REQUIRED_COLUMNS if c not in present]


def check_export_columns(described: Mapping[str, str], where: str) -> None:
    """Refuse a file that lacks a column needed to place its money."""
    missing = missing_columns(described)
    if missing:
        raise GcpFormatError(
            f"{where}: GCP billing export is missing column(s) {', '.join(missing)}: without "
            "them its cost cannot be placed by account, service, time, amount, credits, invoice "
            "month and export time. Fix: dump the export table with SELECT * (standard "
            "gcp_billing_export_v1_<account> or detailed gcp_billing_export_resource_v1_<account>) "
            "so the nested columns are kept, and re-deliver the file."
        )


# ----------------------------------------------------------------------------------------------
# Newline-delimited JSON dumps (bq extract --destination_format NEWLINE_DELIMITED_JSON)
#
# JSON carries no schema and bq leaves NULL fields (and possibly empty REPEATED ones) out of the
# line, so the dumps are read with the export's documented schema (standard usage cost table plus
# the detailed table's resource, price and subscription), never with types guessed from a few
# rows: a field absent from every line of a file still has its type. BigQuery's JSON encoding:
# TIMESTAMP as text 'YYYY-MM-DD HH:MM:SS[.ffffff] UTC' (read as text, parsed by timestamp_sql),
# INT64 as JSON strings, FLOAT and NUMERIC as numbers (DuckDB casts a number written as a string
# too), RECORD as objects, REPEATED as arrays. Fields the schema does not list are ignored.

_BIGQUERY_TO_DUCKDB = {
    "STRING": TEXT,
    "TIMESTAMP": TEXT,
    "FLOAT": "DOUBLE",
    "NUMERIC": "DECIMAL(38, 9)",
    "INT64": "BIGINT",
    "BOOLEAN": "BOOLEAN",
}
_KEY_VALUE_RECORD = {"key": "STRING", "value": "STRING"}
# field -> BigQuery type, a dict (RECORD) or a one-element list (REPEATED RECORD).
EXPORT_SCHEMA: dict[str, object] = {
    "billing_account_id": "STRING",
    "service": {"id": "STRING", "description": "STRING"},
    "sku": {"id": "STRING", "description": "STRING"},
    "usage_start_time": "TIMESTAMP",
    "usage_end_time": "TIMESTAMP",
    "project": {
        "id": "STRING",
        "number": "STRING",
        "name": "STRING",
        "labels": [_KEY_VALUE_RECORD],
        "ancestry_numbers": "STRING",
        "ancestors": [{"resource_name": "STRING", "display_name": "STRING"}],
    },
    "labels": [_KEY_VALUE_RECORD],
    "system_labels": [_KEY_VALUE_RECORD],
    "location": {"location": "STRING", "country": "STRING", "region": "STRING", "zone": "STRING"},
    "tags": [{"key": "STRING", "value": "STRING", "inherited": "BOOLEAN", "namespace": "STRING"}],
    "resource": {"name": "STRING", "global_name": "STRING"},
    "price": {
        "effective_price": "NUMERIC",
        "tier_start_amount": "NUMERIC",
        "unit": "STRING",
        "pricing_unit_quantity": "NUMERIC",
    },
    "subscription": {"instance_id": "STRING"},
    "transaction_type": "STRING",
    "seller_name": "STRING",
    "export_time": "TIMESTAMP",
    "cost": "FLOAT",
    "currency": "STRING",
    "currency_conversion_rate": "FLOAT",
    "usage": {
        "amount": "FLOAT",
        "unit": "STRING",
        "amount_in_pricing_units": "FLOAT",
        "pricing_unit": "STRING",
    },
    "credits": [
        {
            "name": "STRING",
            "amount": "FLOAT",
            "full_name": "STRING",
            "id": "STRING",
            "type": "STRING",
        }
    ],
    "invoice": {"month": "STRING", "publisher_type": "STRING"},
    "cost_type": "STRING",
    "adjustment_info": {
        "id": "STRING",
        "description": "STRING",
        "mode": "STRING",
        "type": "STRING",
    },
    "cost_at_list": "FLOAT",
}
# Top-level REPEATED fields: an empty array may be left out of every line, so absence is no gap.
REPEATED_COLUMNS = tuple(name for name, kind in EXPORT_SCHEMA.items() if isinstance(kind, list))


def _duckdb_type(kind: object) -> str:
    if isinstance(kind, list):
        return _duckdb_type(kind[0]) + "[]"
    if isinstance(kind, dict):
        return (
            "STRUCT("
            + ", ".join(f"{q(name)} {_duckdb_type(inner)}" for name, inner in kind.items())
            + ")"
        )
    return _BIGQUERY_TO_DUCKDB[kind]


def ndjson_columns(names: Sequence[str] | None = None) -> dict[str, str]:
    """DuckDB types of the export's columns as read from NDJSON (all, or only ``names``)."""
    return {
        name: _duckdb_type(kind)
        for name, kind in EXPORT_SCHEMA.items()
        if names is None or name in names
    }


def ndjson_reader_sql(paths: Sequence[str], columns: Mapping[str, str] | None = None) -> str:
    """``read_json`` of newline-delimited JSON dumps (gzip by its .gz suffix) with an explicit
    schema: one JSON object per line, every listed column typed, unlisted fields ignored."""
    columns = ndjson_columns() if columns is None else columns
    struct = (
        "{" + ", ".join(f"{sql_literal(k)}: {sql_literal(v)}" for k, v in columns.items()) + "}"
    )
    files = "[" + ", ".join(sql_literal(p) for p in paths) + "]"
    return f"read_json({files}, format = 'newline_delimited', records = true, columns = {struct})"


def ndjson_presence_sql(reader: str) -> tuple[str, list[str]]:
    """Count the rows and, per required (non-REPEATED) column, the rows that carry it: NDJSON has
    no header, so a column is missing when no line of the file holds it (a NULL is left out)."""
    checked = [c for c in REQUIRED_COLUMNS if c not in REPEATED_COLUMNS]
    counts = ", ".join(f"count({q(c)})" for c in checked)
    return f"SELECT count(*), {counts} FROM {reader}", checked


def check_ndjson_columns(counts: Sequence[int], checked: Sequence[str], where: str) -> None:
    """``check_export_columns`` for an NDJSON file from ``ndjson_presence_sql``'s counts; a file
    without rows has nothing to place."""
    rows, present = counts[0], counts[1:]
    if not rows:
        return
    described = {name: "" for name in REPEATED_COLUMNS}
    described.update({name: "" for name, n in zip(checked, present, strict=True) if n})
    check_export_columns(described, where)


# ----------------------------------------------------------------------------------------------
# Typed staging


def timestamp_sql(expression: str, source_type: str) -> str:
    """``expression`` (of DuckDB type ``source_type``) as TIMESTAMPTZ in UTC: native timestamps,
    ISO text with a zone, BigQuery's JSON text ``2024-03-01 00:00:00[.ffffff] UTC``, and text
    without a zone (read as UTC, as BigQuery timestamps are)."""
    upper = source_type.upper()
    if upper == "VARCHAR":
        text = f"NULLIF(trim({expression}), '')"
        return (
            f"CASE WHEN suffix({text}, 'Z') OR suffix({text}, ' UTC') "
            f"OR regexp_matches({text}, '[+-]\\d\\d(:?\\d\\d)?$') "
            f"THEN CAST({text} AS TIMESTAMPTZ) ELSE {utc_instant(f'CAST({text} AS TIMESTAMP)')} END"
        )
    if "TIME ZONE" in upper or upper == "TIMESTAMPTZ":
        return f"CAST({expression} AS TIMESTAMPTZ)"
    if upper.startswith("TIMESTAMP") or upper == "DATE":
        return utc_instant(f"CAST({expression} AS TIMESTAMP)")
    return f"CAST({expression} AS TIMESTAMPTZ)"


def _number(expression: str, source_type: str, target: str) -> str:
    if source_type.upper() == "VARCHAR":
        return f"CAST(NULLIF(trim({expression}), '') AS {target})"
    return f"CAST({expression} AS {target})"


def _text(expression: str, source_type: str) -> str:
    if source_type.upper() == "VARCHAR":
        return f"NULLIF({expression}, '')"
    return f"CAST({expression} AS VARCHAR)"


class _Columns:
    """Expressions for (possibly missing) top-level columns and struct fields of one source."""

    def __init__(self, described: Mapping[str, str]):
        self.actual = {name.lower(): name for name in described}
        self.types = {name.lower(): str(t) for name, t in described.items()}

    def column(self, name: str) -> tuple[str, str] | None:
        actual = self.actual.get(name)
        return (q(actual), self.types[name]) if actual else None

    def field(self, column: str, field: str) -> tuple[str, str] | None:
        found = self.column(column)
        if found is None:
            return None
        fields = struct_fields(found[1])
        if field not in fields:
            return None
        return f"{found[0]}.{q(field)}", fields[field]


def _element(fields: Mapping[str, str], variable: str, field: str, target: str) -> str:
    """One field of a list element inside a lambda, cast to ``target`` (NULL when absent)."""
    if field not in fields:
        return f"CAST(NULL AS {target})"
    source_type = fields[field]
    expression = f"{variable}.{q(field)}"
    if target == TEXT:
        return _text(expression, source_type)
    if target == "BOOLEAN":
        return f"CAST({expression} AS BOOLEAN)"
    return _number(expression, source_type, target)


def _typed_list(expression_source: tuple[str, str] | None, shape: dict) -> str:
    """A list of structs rebuilt element by element with canonical field names and types; a
    missing or NULL list is an empty list."""
    target = (
        "STRUCT(" + ", ".join(f"{name} {data_type}" for name, data_type in shape.items()) + ")[]"
    )
    if expression_source is None:
        return f"CAST([] AS {target})"
    expression, source_type = expression_source
    fields = struct_fields(source_type)
    packed = ", ".join(
        f"{name} := {_element(fields, 'e', name, data_type)}" for name, data_type in shape.items()
    )
    return (
        f"coalesce(CAST(list_transform({expression}, lambda e: struct_pack({packed})) "
        f"AS {target}), CAST([] AS {target}))"
    )


_KEY_VALUE = {"key": TEXT, "value": TEXT}
_TAG = {"key": TEXT, "value": TEXT, "inherited": "BOOLEAN", "namespace": TEXT}
_CREDIT = {"name": TEXT, "amount": MONEY, "full_name": TEXT, "id": TEXT, "type": TEXT}


def gcp_staging_select(
    source_sql: str, described: Mapping[str, str], promotion_policy: str = "discount"
) -> str:
    """SELECT over ``source_sql`` returning RAW_GCP_COLUMNS plus charge_date and the lineage
    columns passed through (x_DeliveryId, x_SourceFile and any other ``x_`` column of the source).
    Strict casts: a bad number (e.g. a credit amount that is text) fails the statement."""
    if promotion_policy not in PROMOTION_POLICIES:
        raise ValueError(f"promotion policy must be one of {PROMOTION_POLICIES}")
    c = _Columns(described)

    def scalar(found: tuple[str, str] | None, target: str) -> str:
        if found is None:
            return f"CAST(NULL AS {target})"
        expression, source_type = found
        if target == TIMESTAMP:
            return timestamp_sql(expression, source_type)
        if target == TEXT:
            return _text(expression, source_type)
        return _number(expression, source_type, target)

    ancestors = c.field("project", "ancestors")
    cost_type = c.column("cost_type")
    expressions = {
        "billing_account_id": scalar(c.column("billing_account_id"), TEXT),
        "service_id": scalar(c.field("service", "id"), TEXT),
        "service_description": scalar(c.field("service", "description"), TEXT),
        "sku_id": scalar(c.field("sku", "id"), TEXT),
        "sku_description": scalar(c.field("sku", "description"), TEXT),
        "usage_start_time": scalar(c.column("usage_start_time"), TIMESTAMP),
        "usage_end_time": scalar(c.column("usage_end_time"), TIMESTAMP),
        "project_id": scalar(c.field("project", "id"), TEXT),
        "project_number": scalar(c.field("project", "number"), TEXT),
        "project_name": scalar(c.field("project", "name"), TEXT),
        "project_labels": _typed_list(c.field("project", "labels"), _KEY_VALUE),
        "project_ancestors": (
            f"CAST(to_json({ancestors[0]}) AS VARCHAR)" if ancestors else "CAST(NULL AS VARCHAR)"
        ),
        "labels": _typed_list(c.column("labels"), _KEY_VALUE),
        "system_labels": _typed_list(c.column("system_labels"), _KEY_VALUE),
        "tags": _typed_list(c.column("tags"), _TAG),
        "location_location": scalar(c.field("location", "location"), TEXT),
        "location_country": scalar(c.field("location", "country"), TEXT),
        "location_region": scalar(c.field("location", "region"), TEXT),
        "location_zone": scalar(c.field("location", "zone"), TEXT),
        "resource_name": scalar(c.field("resource", "name"), TEXT),
        "resource_global_name": scalar(c.field("resource", "global_name"), TEXT),
        "usage_amount": scalar(c.field("usage", "amount"), QUANTITY),
        "usage_unit": scalar(c.field("usage", "unit"), TEXT),
        "usage_amount_in_pricing_units": scalar(
            c.field("usage", "amount_in_pricing_units"), QUANTITY
        ),
        "usage_pricing_unit": scalar(c.field("usage", "pricing_unit"), TEXT),
        "cost": scalar(c.column("cost"), MONEY),
        "cost_at_list": scalar(c.column("cost_at_list"), MONEY),
        "currency": scalar(c.column("currency"), TEXT),
        "currency_conversion_rate": scalar(c.column("currency_conversion_rate"), RATE),
        "credits": _typed_list(c.column("credits"), _CREDIT),
        "invoice_month": scalar(c.field("invoice", "month"), TEXT),
        # Exports from before cost_type existed only carried regular charges.
        "cost_type": (f"coalesce({_text(*cost_type)}, 'regular')" if cost_type else "'regular'"),
        "adjustment_id": scalar(c.field("adjustment_info", "id"), TEXT),
        "adjustment_description": scalar(c.field("adjustment_info", "description"), TEXT),
        "adjustment_mode": scalar(c.field("adjustment_info", "mode"), TEXT),
        "adjustment_type": scalar(c.field("adjustment_info", "type"), TEXT),
        "export_time": scalar(c.column("export_time"), TIMESTAMP),
        "x_PromotionPolicy": sql_literal(promotion_policy),
    }
    typed = ",\n            ".join(
        f"CAST({expressions[name]} AS {data_type}) AS {q(name)}"
        for name, data_type in RAW_GCP_COLUMNS.items()
    )
    passthrough = [name for name in described if name.startswith("x_")]
    for name in LINEAGE_PASSTHROUGH:
        if name not in passthrough:
            raise ValueError(f"the staging source must carry {name}")
    outputs = ", ".join(q(n) for n in RAW_GCP_COLUMNS)
    extra = ", ".join(q(n) for n in passthrough)
    return f"""
        SELECT {outputs},
               {utc_date("usage_start_time")} AS charge_date, {extra}
        FROM (
            SELECT {typed}, {extra}
            FROM {source_sql}
        ) AS typed_gcp
    """


def latest_dump_rows_sql(staged_sql: str) -> str:
    """Rows of every dump of a usage day, each row exactly once.

    The export table is append-only and every row carries the ``export_time`` of the batch that
    wrote it; a dump (one ``EXPORT DATA`` run, possibly several shard files) holds the day's rows
    exported up to then. Each ``export_time`` batch is therefore taken from exactly one dump of
    its (dataset, usage_date folder): the one with the newest watermark (max export_time, then the
    dump name). A full re-export of the day supersedes the older dumps; an incremental dump (only
    rows newer than the last watermark) adds its batches; a dump copied twice counts once.

    ``staged_sql`` must return ``x_Dataset``, ``x_UsageDateFolder`` and ``x_Dump``. Adds
    ``x_ExportWatermark``: max(export_time) per billing account and charge day, after the merge.
    """
    return f"""
        SELECT * EXCLUDE (x_DumpWatermark),
               max(export_time) OVER (PARTITION BY billing_account_id, charge_date)
                   AS x_ExportWatermark
        FROM (
            SELECT *
            FROM (
                SELECT *, max(export_time) OVER (
                    PARTITION BY x_Dataset, x_UsageDateFolder, x_Dump) AS x_DumpWatermark
                FROM ({staged_sql})
            )
            QUALIFY dense_rank() OVER (
                PARTITION BY x_Dataset, x_UsageDateFolder, export_time
                ORDER BY x_DumpWatermark DESC, x_Dump DESC) = 1
        )
    """


# ----------------------------------------------------------------------------------------------
# FOCUS mapping and the independent basis


def _list(values: Sequence[str]) -> str:
    return "(" + ", ".join(sql_literal(v) for v in values) + ")"


def _window(days: tuple[date, date]) -> str:
    return f"charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'"


def _service_category_values() -> str:
    return ", ".join(
        f"({sql_literal(k)}, {sql_literal(v)})" for k, v in _SERVICE_CATEGORIES.items()
    )


def _json_object(pairs: str) -> str:
    """JSON object text of a list of {key, value} structs (first of a duplicated key wins)."""
    deduplicated = (
        f"list_filter({pairs}, lambda p, i: "
        f"list_position(list_transform({pairs}, lambda x: x.key), p.key) = i)"
    )
    entries = f"list_transform({deduplicated}, lambda p: struct_pack(k := p.key, v := p.value))"
    return f"coalesce(CAST(to_json(map_from_entries({entries})) AS VARCHAR), '{{}}')"


def _focus_expressions() -> dict[str, str]:
    t = "cost_type"
    billed = "(coalesce(cost, 0) + counted_credits)"
    is_fee = (
        f"({t} = 'regular' AND starts_with(lower(coalesce(sku_description, '')), 'commitment'))"
    )
    category = f"""CASE
            WHEN {is_fee} THEN 'Purchase'
            WHEN {t} = 'regular' THEN 'Usage'
            WHEN {t} = 'tax' THEN 'Tax'
            WHEN {t} = 'adjustment' AND adjustment_type IN {_list(GOODWILL_ADJUSTMENT_TYPES)}
                THEN 'Credit'
            WHEN {t} IN ('adjustment', 'rounding_error') THEN 'Adjustment'
            ELSE 'Usage' END"""
    usage_row = f"({t} = 'regular' AND NOT {is_fee} OR unknown_type)"
    commitment = f"CASE WHEN {usage_row} THEN commitment_credit END"
    frequency = f"""CASE
            WHEN {is_fee} THEN 'Recurring'
            WHEN {t} IN ('adjustment', 'rounding_error') THEN 'One-Time'
            ELSE 'Usage-Based' END"""
    usage_month = f"strftime({utc_naive('usage_start_time')}, '%Y%m')"
    period_month = f"strptime(coalesce(invoice_month, {usage_month}) || '01', '%Y%m%d')"
    period_start = utc_instant(period_month)
    period_end = utc_instant(f"{period_month} + INTERVAL 1 MONTH")
    tags = "list_concat(labels, list_transform(list_filter(tags, lambda g: NOT coalesce(g.inherited, false) AND NOT list_contains(list_transform(labels, lambda l: l.key), g.key)), lambda g: struct_pack(key := g.key, value := g.value)))"
    return {
        "AvailabilityZone": "location_zone",
        "BilledCost": billed,
        "BillingAccountId": "billing_account_id",
        "BillingCurrency": "currency",
        "BillingPeriodEnd": period_end,
        "BillingPeriodStart": period_start,
        "ChargeCategory": category,
        "ChargeClass": (
            f"CASE WHEN {t} = 'adjustment' AND invoice_month > {usage_month} THEN 'Correction' END"
        ),
        "ChargeDescription": "sku_description",
        "ChargeFrequency": frequency,
        "ChargePeriodEnd": "usage_end_time",
        "ChargePeriodStart": "usage_start_time",
        "CommitmentDiscountCategory": (
            f"CASE ({commitment}).type WHEN 'COMMITTED_USAGE_DISCOUNT' THEN 'Usage' "
            "WHEN 'COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE' THEN 'Spend' END"
        ),
        "CommitmentDiscountId": (
            f"coalesce(({commitment}).id, ({commitment}).full_name, ({commitment}).name)"
        ),
        "CommitmentDiscountName": f"({commitment}).name",
        "CommitmentDiscountStatus": f"CASE WHEN ({commitment}) IS NOT NULL THEN 'Used' END",
        "CommitmentDiscountType": (
            f"CASE WHEN ({commitment}) IS NOT NULL THEN 'Committed Use Discount' END"
        ),
        "ConsumedQuantity": f"CASE WHEN {usage_row} THEN usage_amount END",
        "ConsumedUnit": f"CASE WHEN {usage_row} THEN usage_unit END",
        "ContractedCost": "coalesce(cost, 0)",
        "EffectiveCost": billed,
        "InvoiceIssuerName": "'Google Cloud'",
        "ListCost": f"CASE WHEN {usage_row} THEN cost_at_list ELSE coalesce(cost_at_list, cost, 0) END",
        "PricingCategory": f"""CASE
            WHEN {usage_row} AND commitment_credit IS NOT NULL THEN 'Committed'
            WHEN {usage_row} OR {is_fee} THEN 'Standard' END""",
        "PricingCurrency": "currency",
        # FOCUS: no pricing quantity on tax, and a quantity always has its unit.
        "PricingQuantity": (
            f"CASE WHEN ({category}) = 'Tax' OR NULLIF(trim(usage_pricing_unit), '') IS NULL "
            "THEN NULL ELSE usage_amount_in_pricing_units END"
        ),
        "PricingUnit": (
            f"CASE WHEN ({category}) = 'Tax' OR usage_amount_in_pricing_units IS NULL THEN NULL "
            "ELSE NULLIF(trim(usage_pricing_unit), '') END"
        ),
        "ProviderName": "'Google Cloud'",
        "PublisherName": "'Google Cloud'",
        "RegionId": "location_region",
        "RegionName": "location_location",
        "ResourceId": "resource_global_name",
        "ResourceName": "resource_name",
        "ServiceCategory": (
            f"CASE WHEN {t} = 'tax' THEN 'Other' ELSE coalesce(by_service.category, 'Other') END"
        ),
        "ServiceName": "coalesce(service_description, service_id)",
        "SkuId": "sku_id",
        "SubAccountId": "project_id",
        "SubAccountName": "project_name",
        "SubAccountType": "CASE WHEN project_id IS NOT NULL THEN 'Project' END",
        "Tags": _json_object(tags),
    }


def gcp_focus_sql(raw_table: str, days: tuple[date, date]) -> str:
    """raw.gcp_billing rows of ``days`` as FOCUS 1.2 (exactly FOCUS_COLUMNS, typed as listed) plus
    charge_date, lineage, x_Dataset, x_BillingPeriod and the GCP ``x_`` columns."""
    expressions = _focus_expressions()
    columns = ",\n            ".join(
        f"CAST({expressions.get(column, 'NULL')} AS {data_type}) AS {q(column)}"
        for column, data_type in FOCUS_COLUMNS.items()
    )
    commitment_types = _list(COMMITMENT_CREDIT_TYPES)
    return f"""
        WITH service_categories(description, category) AS (VALUES {_service_category_values()}),
        gcp AS (
            SELECT *,
                   coalesce(list_sum(list_transform(
                       list_filter(credits, lambda c: x_PromotionPolicy = 'discount'
                                   OR coalesce(c.type, '') <> 'PROMOTION'),
                       lambda c: c.amount)), 0) AS counted_credits,
                   coalesce(list_sum(list_transform(
                       list_filter(credits, lambda c: c.type = 'PROMOTION'),
                       lambda c: c.amount)), 0) AS promotion_credits,
                   list_filter(credits, lambda c: c.type IN {commitment_types})[1]
                       AS commitment_credit,
                   cost_type NOT IN {_list(COST_TYPES)} AS unknown_type
            FROM {raw_table}
            WHERE {_window(days)}
        )
        SELECT {columns},
            charge_date, x_DeliveryId, x_SourceFile, x_Dataset, x_BillingPeriod,
            CAST(cost_type AS VARCHAR) AS x_LineItemType,
            CAST(unknown_type AS BOOLEAN) AS x_UnknownLineItemType,
            CAST(counted_credits AS {MONEY}) AS x_CreditsApplied,
            CAST(promotion_credits AS {MONEY}) AS x_PromotionCredits,
            x_PromotionPolicy,
            CAST(to_json(credits) AS VARCHAR) AS x_Credits,
            {_json_object("project_labels")} AS x_ProjectLabels,
            {_json_object("list_filter(tags, lambda g: coalesce(g.inherited, false))")}
                AS x_InheritedTags,
            {_json_object("system_labels")} AS x_SystemLabels,
            coalesce(project_ancestors, '[]') AS x_ProjectAncestors,
            adjustment_id AS x_AdjustmentId,
            adjustment_type AS x_AdjustmentType,
            adjustment_mode AS x_AdjustmentMode,
            export_time AS x_ExportTime,
            x_ExportWatermark
        FROM gcp
        LEFT JOIN service_categories AS by_service
            ON by_service.description = lower(gcp.service_description)
    """


def gcp_basis_totals_sql(raw_table: str, days: tuple[date, date]) -> str:
    """Per charge_date, currency, billing account and invoice month: rows, Σ cost plus Σ credits
    (PROMOTION excluded on rows loaded under the ``payment`` policy), computed from raw by
    unnesting the credits on a path of its own (reconciles ``gcp_focus_sql``). The export has no
    amortized view of its own, so the effective basis equals the billed basis."""
    keys = "charge_date, currency, billing_account_id, invoice_month"
    return f"""
        WITH base AS (
            SELECT {keys}, cost, credits, x_PromotionPolicy
            FROM {raw_table} WHERE {_window(days)}
        ),
        cost_totals AS (
            SELECT {keys}, count(*) AS n, sum(coalesce(cost, 0)) AS cost
            FROM base GROUP BY ALL
        ),
        credit_totals AS (
            SELECT {keys},
                   sum(credit.amount) FILTER (
                       WHERE x_PromotionPolicy = 'discount'
                          OR coalesce(credit.type, '') <> 'PROMOTION') AS credited
            FROM (SELECT {keys}, x_PromotionPolicy, unnest(credits) AS credit FROM base)
            GROUP BY ALL
        )
        SELECT cost_totals.charge_date,
               cost_totals.currency AS BillingCurrency,
               cost_totals.billing_account_id AS BillingAccountId,
               substr(cost_totals.invoice_month, 1, 4) || '-' || substr(cost_totals.invoice_month, 5, 2)
                   AS billing_period,
               n AS "rows",
               cost + coalesce(credited, 0) AS billed,
               cost + coalesce(credited, 0) AS effective
        FROM cost_totals
        LEFT JOIN credit_totals
            ON credit_totals.charge_date = cost_totals.charge_date
           AND credit_totals.currency = cost_totals.currency
           AND credit_totals.billing_account_id = cost_totals.billing_account_id
           AND credit_totals.invoice_month = cost_totals.invoice_month
        ORDER BY ALL
    """


# ----------------------------------------------------------------------------------------------
# BigQuery direct mode

# project.dataset.gcp_billing_export[_resource]_v1_XXXXXX_XXXXXX_XXXXXX: a GCP project id (6-30
# lower-case letters, digits and hyphens, starting with a letter, not ending with a hyphen), a
# dataset name (letters, digits, underscores) and the export's own table name. Nothing else may
# reach the query text.
BIGQUERY_TABLE_PATTERN = re.compile(
    r"^(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])\."
    r"(?P<dataset>[A-Za-z_][A-Za-z0-9_]{0,1023})\."
    r"(?P<table>gcp_billing_export_(?:resource_)?v1_[0-9A-Fa-f]{6}_[0-9A-Fa-f]{6}_[0-9A-Fa-f]{6})$"
)


def validate_bigquery_table(table_id: str) -> str:
    if not isinstance(table_id, str) or not BIGQUERY_TABLE_PATTERN.match(table_id):
        raise ValueError(
            f"{table_id!r} is not a Cloud Billing export table id; use "
            "project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX (standard) or "
            "project.dataset.gcp_billing_export_resource_v1_XXXXXX_XXXXXX_XXXXXX (detailed)"
        )
    return table_id


@dataclass(frozen=True)
class BigQueryDayQuery:
    """A parameterized query for the export rows of whole UTC usage days ``[start, end)``."""

    table_id: str
    sql: str
    start: datetime
    end: datetime

    @property
    def parameters(self) -> list[tuple[str, str, datetime]]:
        return [("start", "TIMESTAMP", self.start), ("end", "TIMESTAMP", self.end)]

    def job_config(self):
        """google.cloud.bigquery.QueryJobConfig carrying @start and @end as TIMESTAMP parameters."""
        from google.cloud import bigquery

        return bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter(name, kind, value)
                for name, kind, value in self.parameters
            ]
        )


def bigquery_days_query(table_id: str, days: tuple[date, date]) -> BigQueryDayQuery:
    """The export rows whose usage starts on ``days`` (UTC), every column as exported.

    The export tables are partitioned by ``_PARTITIONTIME``; a row is written to its partition
    when (or after) its usage happened, never before, so partitions older than a day before
    ``@start`` cannot hold these rows and are pruned. There is no upper bound on the partition:
    corrections for a day arrive days or months later and must be read too. ``usage_start_time``
    bounds select the days exactly. Values travel only as query parameters.
    """
    validate_bigquery_table(table_id)
    start = datetime.combine(days[0], time(0), tzinfo=UTC)
    end = datetime.combine(days[1] + timedelta(days=1), time(0), tzinfo=UTC)
    sql = (
        f"SELECT *\nFROM `{table_id}`\n"
        "WHERE _PARTITIONTIME >= TIMESTAMP_SUB(TIMESTAMP_TRUNC(@start, DAY), INTERVAL 1 DAY)\n"
        "  AND usage_start_time >= @start\n"
        "  AND usage_start_time < @end"
    )
    return BigQueryDayQuery(table_id=table_id, sql=sql, start=start, end=end)


FACT_SOURCE = FactSource(
    "gcp_billing",
    "raw.gcp_billing",
    gcp_focus_sql,
    gcp_basis_totals_sql,
    "the export's Σ cost + Σ credits per invoice.month (PROMOTION per gcp.promotion_credits)",
)
