"""Tag dimensions and the daily marts, as DuckDB SQL over a facts relation.

Tags are resolved once per distinct ``Tags`` value (a few thousand per day, not millions of rows):
keys are trimmed and case-folded, matched to dimension aliases in priority order, values trimmed,
case-folded and mapped. Missing values become the dimension's sentinel, never NULL.
"""

from __future__ import annotations

from datetime import date

from finops_assets.lib.loading import sql_literal
from finops_assets.lib.rules import Rules

MART_DIMENSIONS = ("department", "team", "environment", "cost_center")


def _window(days: tuple[date, date]) -> str:
    return f"charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'"


def _strip_prefixes(expression: str, rules: Rules) -> str:
    for prefix in rules.tag_key_prefixes:
        p = sql_literal(prefix.strip().casefold())
        expression = f"CASE WHEN starts_with({expression}, {p}) THEN trim(substr({expression}, length({p}) + 1)) ELSE {expression} END"
    return expression


def alias_rows_sql(rules: Rules) -> str:
    rows = [
        f"({sql_literal(alias)}, {sql_literal(name)}, {priority})"
        for name, dimension in rules.dimensions.items()
        for priority, alias in enumerate(dimension.aliases)
    ]
    return f"(VALUES {', '.join(rows)}) AS aliases(tag_key, dimension, priority)"


def value_map_sql(rules: Rules) -> str:
    rows = [
        f"({sql_literal(name)}, {sql_literal(source)}, {sql_literal(target)})"
        for name, dimension in rules.dimensions.items()
        for source, target in dimension.values.items()
    ] or ["(NULL, NULL, NULL)"]
    return f"(VALUES {', '.join(rows)}) AS value_map(dimension, source, target)"


def resolved_dimensions_sql(rules: Rules, facts: str, column: str = "Tags") -> str:
    """One row per distinct value of the JSON tag column ``column`` of ``facts`` (output column
    ``Tags``) with a column per dimension (NULL if absent)."""
    pivots = ", ".join(
        f"max(value) FILTER (WHERE dimension = {sql_literal(name)}) AS {name}"
        for name in rules.dimensions
    )
    return f"""
        SELECT Tags, {pivots}
        FROM (
            SELECT Tags, aliases.dimension AS dimension,
                   arg_min(coalesce(value_map.target, tag_value), priority) AS value
            FROM (
                SELECT Tags, {_strip_prefixes("lower(trim(entry.key))", rules)} AS tag_key,
                       NULLIF(lower(trim(entry.value)), '') AS tag_value
                FROM (
                    SELECT Tags, unnest(map_entries(
                        CASE WHEN json_valid(Tags) AND json_type(Tags) = 'OBJECT'
                             THEN CAST(CAST(Tags AS JSON) AS MAP(VARCHAR, VARCHAR)) END
                    )) AS entry
                    FROM (SELECT DISTINCT {column} AS Tags FROM {facts} WHERE {column} IS NOT NULL)
                )
            ) AS tag_entries
            JOIN {alias_rows_sql(rules)} USING (tag_key)
            LEFT JOIN {value_map_sql(rules)}
                ON value_map.dimension = aliases.dimension AND value_map.source = tag_value
            WHERE tag_value IS NOT NULL
            GROUP BY Tags, aliases.dimension
        )
        GROUP BY Tags
    """


def facts_with_dimensions_sql(rules: Rules, facts_table: str, days: tuple[date, date]) -> str:
    """The day's facts with one column per dimension (sentinels for missing values) and
    ``x_OwnerTagged`` telling whether the ownership dimension came from a tag."""
    dimension_columns = ", ".join(
        f"coalesce(dims.{name}, {sql_literal(d.missing)}) AS {name}"
        for name, d in rules.dimensions.items()
    )
    return f"""
        WITH facts AS (SELECT * FROM {facts_table} WHERE {_window(days)}),
             dims AS ({resolved_dimensions_sql(rules, "facts")})
        SELECT facts.*, {dimension_columns},
               dims.{rules.ownership_dimension} IS NOT NULL AS x_OwnerTagged
        FROM facts LEFT JOIN dims ON facts.Tags = dims.Tags
    """


def daily_cost_by_team_sql(rules: Rules, allocated_table: str, days: tuple[date, date]) -> str:
    """Per day, provider, currency, owner dimensions, service category and allocation rule, from
    core.allocated_costs (whose rows already carry their dimensions)."""
    extra = [d for d in rules.dimensions if d not in MART_DIMENSIONS]
    group = [
        "charge_date",
        "ProviderName",
        "BillingCurrency",
        *MART_DIMENSIONS,
        *extra,
        "ServiceCategory",
    ]
    return f"""
        SELECT {", ".join(group)}, x_AllocationRule AS allocation_rule,
               sum(BilledCost) AS billed_cost,
               sum(EffectiveCost) AS effective_cost,
               sum(ListCost) AS list_cost,
               count(DISTINCT ResourceId) AS resource_count,
               count(*) AS row_count,
               count_if(NOT x_OwnerTagged) AS untagged_rows,
               count_if(CommitmentDiscountId IS NOT NULL) AS committed_rows,
               string_agg(DISTINCT x_DeliveryId, ',' ORDER BY x_DeliveryId) AS x_DeliveryId,
               string_agg(DISTINCT x_SourceFile, ',' ORDER BY x_SourceFile) AS x_SourceFile
        FROM {allocated_table}
        WHERE {_window(days)}
        GROUP BY ALL
    """


def untagged_spend_sql(rules: Rules, allocated_table: str, days: tuple[date, date]) -> str:
    """Per day, provider and currency: cost without an owner tag (tagging hygiene), cost no rule
    could assign (still the missing sentinel after allocation), the total, and the untagged share
    of effective cost in % (NULL when the day's effective total is zero)."""
    owner = rules.ownership_dimension
    missing = sql_literal(rules.dimensions[owner].missing)
    inner = f"""
        SELECT charge_date, ProviderName, BillingCurrency,
               sum(BilledCost) FILTER (WHERE NOT x_OwnerTagged) AS untagged_billed_cost,
               sum(EffectiveCost) FILTER (WHERE NOT x_OwnerTagged) AS untagged_effective_cost,
               sum(BilledCost) FILTER (WHERE {owner} = {missing}) AS unallocated_billed_cost,
               sum(EffectiveCost) FILTER (WHERE {owner} = {missing}) AS unallocated_effective_cost,
               sum(BilledCost) AS total_billed_cost,
               sum(EffectiveCost) AS total_effective_cost,
               count_if(NOT x_OwnerTagged) AS untagged_rows,
               count(*) AS total_rows,
               string_agg(DISTINCT x_DeliveryId, ',' ORDER BY x_DeliveryId) AS x_DeliveryId,
               string_agg(DISTINCT x_SourceFile, ',' ORDER BY x_SourceFile) AS x_SourceFile
        FROM {allocated_table}
        WHERE {_window(days)}
        GROUP BY ALL
    """
    return f"""
        SELECT * EXCLUDE (untagged_billed_cost, untagged_effective_cost,
                          unallocated_billed_cost, unallocated_effective_cost),
               coalesce(untagged_billed_cost, 0)::DECIMAL(38, 12) AS untagged_billed_cost,
               coalesce(untagged_effective_cost, 0)::DECIMAL(38, 12) AS untagged_effective_cost,
               coalesce(unallocated_billed_cost, 0)::DECIMAL(38, 12) AS unallocated_billed_cost,
               coalesce(unallocated_effective_cost, 0)::DECIMAL(38, 12)
                   AS unallocated_effective_cost,
               CASE WHEN total_effective_cost <> 0
                    THEN round(100 * coalesce(untagged_effective_cost, 0)::DOUBLE
                               / total_effective_cost::DOUBLE, 4)
               END AS untagged_pct
        FROM ({inner})
    """
