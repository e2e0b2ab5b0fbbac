"""core.allocated_costs: every amortized cost on an owner, by a rule a reviewer can trace.

Each row takes the first rung of the fallback chain that applies (DOMAIN §7) and records it in
``x_AllocationRule``:

1. ``commitment_pool``: unused commitment cost (and platform-amortized purchases) under the
   ``central`` policy stays with the commitments pool owner (``amortization.commitment_pool``).
2. ``resource_tag``: the row's own tags name the owner (ownership dimension via the alias table).
3. ``inherited``: the account / subscription / project hierarchy in the rules YAML (by
   SubAccountId, then the GCP project's folders and organization from its ancestors, nearest
   first, then BillingAccountId; nodes inherit along ``parent`` links), then the provider's
   inherited tags (AWS account tags, GCP inherited tags, GCP project labels).
4. ``shared_pool``: the first ``shared_pools`` entry whose match applies. A pool's cost is summed
   per day, currency, provider, account, service and charge category and split across owners by
   ``proportional`` (each owner's direct effective cost that day, optionally per provider),
   ``even``, ``fixed`` weights or a usage ``metric``. Shares are whole cents that add up exactly
   (largest-remainder rounding, per measure); the sub-cent rest goes to the largest share.
5. ``default_pool``: everything else, owned by ``default_pool`` or kept visible as the missing
   sentinel (``__untagged__``).

Dimensions other than the owner come from the row's tags, then the owner's entry under
``owners``, then the hierarchy, then provider-inherited tags, then the sentinel. Currencies are
never mixed: weights and splits are computed per currency.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from finops_assets.lib.loading import sql_literal
from finops_assets.lib.rollups import _strip_prefixes, resolved_dimensions_sql
from finops_assets.lib.rules import (
    MATCHABLE_COLUMNS,
    METRIC_COLUMNS,
    PoolMatch,
    Rules,
    SharedPool,
    inherited_dimensions,
)
from finops_assets.lib.warehouse import quote_identifier as q

ALLOCATION_RULES = ("commitment_pool", "resource_tag", "inherited", "shared_pool", "default_pool")
SPLIT_MEASURES = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
# Columns a pooled cost keeps (it is summed over them before the split).
POOL_GROUP_COLUMNS = (
    "charge_date",
    "BillingCurrency",
    "ProviderName",
    "x_Source",
    "BillingAccountId",
    "SubAccountId",
    "ServiceCategory",
    "ServiceName",
    "ChargeCategory",
    "x_AmortizationClass",
)
INHERITED_TAG_COLUMNS = (
    ("x_AccountTags", "account tags"),
    ("x_InheritedTags", "provider inherited tags"),
    ("x_ProjectLabels", "project labels"),
)


def _window(days: tuple[date, date]) -> str:
    return f"charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'"


def _values(rows: list[tuple], names: tuple[str, ...], alias: str) -> str:
    """A VALUES relation; typed NULL row set when empty (filtered away by WHERE false)."""
    if not rows:
        nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {q(n)}" for n in names)
        return f"(SELECT {nulls} WHERE false) AS {alias}"
    body = ", ".join(
        "(" + ", ".join("NULL" if v is None else sql_literal(str(v)) for v in row) + ")"
        for row in rows
    )
    return f"(VALUES {body}) AS {alias}({', '.join(q(n) for n in names)})"


def _owner_dimensions(rules: Rules, owner: str | None) -> dict[str, str | None]:
    """The dimensions an owner name implies (NULL where the owners table says nothing)."""
    values: dict[str, str | None] = dict.fromkeys(rules.dimensions)
    if owner is None:
        return values
    values[rules.ownership_dimension] = owner.strip().casefold()
    known = rules.owners.get(owner)
    for key, value in (known.dimensions if known else {}).items():
        values[key] = value
    return values


def _tag_map(column: str) -> str:
    return (
        f"CASE WHEN json_valid({column}) AND json_type({column}) = 'OBJECT' "
        f"THEN CAST(CAST({column} AS JSON) AS MAP(VARCHAR, VARCHAR)) END"
    )


def match_sql(rules: Rules, match: PoolMatch, tag_flag: str | None) -> str:
    """SQL condition of a pool match over a row; ``tag_flag`` is the precomputed tag condition."""
    conditions = [
        f"{q(column)} IN ({', '.join(sql_literal(v) for v in getattr(match, column))})"
        for column in MATCHABLE_COLUMNS
        if getattr(match, column)
    ]
    if tag_flag is not None:
        conditions.append(tag_flag)
    return "(" + " AND ".join(conditions) + ")" if conditions else "false"


def tag_match_sql(rules: Rules, match: PoolMatch, tags: str = "Tags") -> str | None:
    """Condition over a tag JSON column: every listed key (prefix-stripped, case-folded) holds
    one of its values (trimmed, case-folded)."""
    if not match.tags:
        return None
    key = _strip_prefixes("lower(trim(e.key))", rules)
    parts = []
    for tag_key, values in match.tags.items():
        wanted = ", ".join(sql_literal(v.strip().casefold()) for v in values)
        parts.append(
            "list_has_any(list_transform(list_filter(map_entries("
            f"{_tag_map(tags)}), lambda e: {key} = {sql_literal(tag_key.strip().casefold())}), "
            f"lambda e: lower(trim(e.value))), [{wanted}])"
        )
    return "coalesce(" + " AND ".join(parts) + ", false)"


def _recipients_sql(rules: Rules, pool: SharedPool, dims: list[str]) -> str:
    """Who shares a pool's cost, with a positive weight: (pool_name, charge_date,
    BillingCurrency, provider_key, dimensions..., weight)."""
    provider = "ProviderName" if pool.per_provider else "CAST(NULL AS VARCHAR)"
    dim_list = ", ".join(q(d) for d in dims)
    name = sql_literal(pool.name)
    if pool.split in ("proportional", "metric") or (pool.split == "even" and not pool.owners):
        if pool.split == "metric":
            weight = f"sum({q(pool.metric)})"
            where = (
                match_sql(rules, pool.metric_match, tag_match_sql(rules, pool.metric_match))
                if pool.metric_match
                else "true"
            )
        else:
            weight = "sum(EffectiveCost)"
            where = "true"
        having = f"{weight} > 0" if pool.split != "even" else "count(*) > 0"
        weight_out = weight if pool.split != "even" else "1"
        return f"""
            SELECT {name} AS pool_name, charge_date, BillingCurrency, {provider} AS provider_key,
                   {dim_list}, CAST({weight_out} AS DOUBLE) AS weight
            FROM direct_rows
            WHERE x_AllocationRule IN ('resource_tag', 'inherited') AND {where}
            GROUP BY ALL HAVING {having}
        """
    weights = (
        {owner: 1 for owner in pool.owners}
        if pool.split == "even"
        else {owner: w for owner, w in pool.weights.items() if w > 0}
    )
    rows = [
        (*[_owner_dimensions(rules, owner)[d] for d in dims], str(weight))
        for owner, weight in weights.items()
    ]
    owner_values = _values(rows, (*dims, "weight"), "owner_weights")
    dim_out = ", ".join(
        f"coalesce(owner_weights.{q(d)}, {sql_literal(rules.dimensions[d].missing)}) AS {q(d)}"
        for d in dims
    )
    return f"""
        SELECT {name} AS pool_name, days.charge_date, days.BillingCurrency,
               days.provider_key, {dim_out}, CAST(owner_weights.weight AS DOUBLE) AS weight
        FROM (SELECT DISTINCT charge_date, BillingCurrency, provider_key FROM pooled
              WHERE pool_name = {name}) AS days
        CROSS JOIN {owner_values}
    """


def _cents(units: str) -> str:
    """A whole number of cents as exact money (DuckDB's decimal division would give a DOUBLE)."""
    return f"CAST(CAST({units} AS DECIMAL(36, 0)) * CAST(0.01 AS DECIMAL(3, 2)) AS DECIMAL(38, 12))"


def _largest_remainder_sql(source: str, group: str, tie_break: str) -> str:
    """Split every SPLIT_MEASURES amount of ``source`` rows (one row per (group, recipient), with
    ``weight`` and ``total_weight``) into whole cents that add up exactly per group."""
    stage1 = [f"{source}.*"]
    for m in SPLIT_MEASURES:
        units = f"CAST(floor(pool_{m} * 100) AS HUGEINT)"
        stage1.append(f"{units} AS units_{m}")
        stage1.append(f"CAST({units} AS DOUBLE) * weight / total_weight AS exact_{m}")
    stage2 = ["*"]
    for m in SPLIT_MEASURES:
        stage2.append(f"CAST(floor(exact_{m}) AS HUGEINT) AS base_{m}")
    stage3 = ["*"]
    for m in SPLIT_MEASURES:
        stage3.append(f"units_{m} - sum(base_{m}) OVER (PARTITION BY {group}) AS rest_{m}")
        stage3.append(
            f"row_number() OVER (PARTITION BY {group} ORDER BY exact_{m} - base_{m} DESC, "
            f"{tie_break}) AS rank_{m}"
        )
    stage3.append(f"count(*) OVER (PARTITION BY {group}) AS recipients")
    stage3.append(
        f"row_number() OVER (PARTITION BY {group} ORDER BY weight DESC, {tie_break}) AS weight_rank"
    )
    out = []
    for m in SPLIT_MEASURES:
        cents = (
            f"base_{m} + CASE WHEN rank_{m} <= rest_{m} THEN 1 "
            f"WHEN rank_{m} > recipients + rest_{m} THEN -1 ELSE 0 END"
        )
        out.append(
            f"CASE WHEN pool_{m} IS NULL THEN NULL ELSE CAST({_cents(cents)} + CASE WHEN "
            f"weight_rank = 1 THEN pool_{m} - {_cents(f'units_{m}')} ELSE 0 END "
            f"AS DECIMAL(38, 12)) END AS {q(m)}"
        )
    return f"""
        SELECT * EXCLUDE ({", ".join(f"units_{m}, exact_{m}, base_{m}, rest_{m}, rank_{m}" for m in SPLIT_MEASURES)}),
               {", ".join(out)}
        FROM (SELECT {", ".join(stage3)} FROM (
              SELECT {", ".join(stage2)} FROM (SELECT {", ".join(stage1)} FROM {source})))
    """


def allocated_costs_sql(
    rules: Rules, amortized_table: str, days: tuple[date, date], columns: Collection[str]
) -> str:
    """The window's rows of core.allocated_costs from ``amortized_table`` (with ``columns``)."""
    dims = list(rules.dimensions)
    owner_dim = rules.ownership_dimension
    missing = {d: sql_literal(rules.dimensions[d].missing) for d in dims}
    inherited_sources = [(c, label) for c, label in INHERITED_TAG_COLUMNS if c in columns]

    # Hierarchy and owners tables (config-sized; flattened in Python).
    flattened = inherited_dimensions(rules)
    hierarchy = _values(
        [(node, *[values.get(d) for d in dims]) for node, values in flattened.items()],
        ("node_id", *dims),
        "hierarchy",
    )
    owners = _values(
        [
            (name.strip().casefold(), *[_owner_dimensions(rules, name)[d] for d in dims])
            for name in rules.owners
        ],
        ("owner", *dims),
        "owners",
    )

    tag_joins = [("tag", "Tags")] + [
        (f"inh{i}", column) for i, (column, _) in enumerate(inherited_sources)
    ]
    dim_ctes = ",\n".join(
        f"{alias}_dims AS ({resolved_dimensions_sql(rules, 'src', column)})"
        for alias, column in tag_joins
    )
    dim_joins = "\n".join(
        f"LEFT JOIN {alias}_dims ON src.{q(column)} = {alias}_dims.Tags"
        for alias, column in tag_joins
    )

    pool_tag_flags = []
    pool_cases = []
    for index, pool in enumerate(rules.shared_pools):
        flag = tag_match_sql(rules, pool.match)
        flag_column = None
        if flag is not None:
            flag_column = f"pool_tag_{index}"
            pool_tag_flags.append(f"{flag} AS {flag_column}")
        pool_cases.append(
            f"WHEN {match_sql(rules, pool.match, flag_column)} THEN {sql_literal(pool.name)}"
        )
    pool_name = f"CASE {' '.join(pool_cases)} END" if pool_cases else "CAST(NULL AS VARCHAR)"
    tag_flags_cte = (
        f"pool_tags AS (SELECT DISTINCT Tags, {', '.join(pool_tag_flags)} FROM src),"
        if pool_tag_flags
        else ""
    )
    tag_flags_join = "LEFT JOIN pool_tags ON src.Tags = pool_tags.Tags" if pool_tag_flags else ""

    # Hierarchy lookups, nearest first: the account / subscription / project itself, then (GCP)
    # the folders and organization above the project, then the billing account.
    lookups = [
        (
            "hsub",
            f"LEFT JOIN {hierarchy.replace(' AS hierarchy', ' AS hsub_h')} "
            "ON hsub_h.node_id = src.SubAccountId",
            "'hierarchy ' || src.SubAccountId",
        )
    ]
    ancestors_cte = ""
    if "x_ProjectAncestors" in columns:
        # Per dimension the nearest ancestor that has it (the chain runs project -> folders ->
        # organization), so a folder's owner and its organization's environment combine.
        nearest = ", ".join(
            f"arg_min(hierarchy.{q(d)}, position) FILTER (WHERE hierarchy.{q(d)} IS NOT NULL) "
            f"AS {q(d)}"
            for d in dims
        )
        ancestors_cte = f"""
        ancestor_dims AS (
            SELECT ancestors,
                   arg_min(hierarchy.node_id, position)
                       FILTER (WHERE hierarchy.{q(owner_dim)} IS NOT NULL) AS node_id,
                   {nearest}
            FROM (
                SELECT ancestors, unnest(names) AS name,
                       generate_subscripts(names, 1) AS position
                FROM (SELECT DISTINCT x_ProjectAncestors AS ancestors,
                             CAST(json_extract_string(x_ProjectAncestors, '$[*].resource_name')
                                  AS VARCHAR[]) AS names
                      FROM src WHERE x_ProjectAncestors IS NOT NULL)
            ) AS chain
            JOIN {hierarchy} ON hierarchy.node_id = chain.name
            GROUP BY ancestors
        ),"""
        lookups.append(
            (
                "hanc",
                "LEFT JOIN ancestor_dims AS hanc_h ON hanc_h.ancestors = src.x_ProjectAncestors",
                "'hierarchy ' || hanc_h.node_id",
            )
        )
    lookups.append(
        (
            "hbill",
            f"LEFT JOIN {hierarchy.replace(' AS hierarchy', ' AS hbill_h')} "
            "ON hbill_h.node_id = src.BillingAccountId",
            "'hierarchy ' || src.BillingAccountId",
        )
    )
    inherited_owner_terms = [f"{a}_h.{q(owner_dim)}" for a, _, _ in lookups] + [
        f"inh{i}_dims.{q(owner_dim)}" for i in range(len(inherited_sources))
    ]
    inherited_detail = " ".join(
        [f"WHEN {a}_h.{q(owner_dim)} IS NOT NULL THEN {detail}" for a, _, detail in lookups]
        + [
            f"WHEN inh{i}_dims.{q(owner_dim)} IS NOT NULL THEN {sql_literal(label)}"
            for i, (_, label) in enumerate(inherited_sources)
        ]
    )
    commitment_owner = sql_literal(rules.amortization.commitment_pool.strip().casefold())
    default_owner = (
        sql_literal(rules.default_pool.strip().casefold())
        if rules.default_pool
        else "CAST(NULL AS VARCHAR)"
    )
    pool_flag = (
        "coalesce(src.x_CommitmentPool, false)" if "x_CommitmentPool" in columns else "false"
    )

    def other_dimension(d: str) -> str:
        terms = [
            f"classified.{q(f'tag_{d}')}",
            f"owners.{q(d)}",
            *(f"classified.{q(f'{a}_{d}')}" for a, _, _ in lookups),
        ]
        terms += [f"classified.{q(f'inh{i}_{d}')}" for i in range(len(inherited_sources))]
        return f"coalesce({', '.join(terms)}, {missing[d]}) AS {q(d)}"

    dimension_columns = ", ".join(
        f"coalesce(classified.owner, {missing[d]}) AS {q(d)}"
        if d == owner_dim
        else other_dimension(d)
        for d in dims
    )
    classified_dims = ", ".join(
        f"{alias}_dims.{q(d)} AS {q(f'{alias}_{d}')}" for alias, _ in tag_joins for d in dims
    )
    group = ", ".join(q(c) for c in POOL_GROUP_COLUMNS if c in columns or c == "charge_date")
    provider_key = " ".join(
        f"WHEN {sql_literal(p.name)} THEN ProviderName"
        for p in rules.shared_pools
        if p.per_provider
    )
    provider_key_sql = (
        f"CASE pool_name {provider_key} END" if provider_key else "CAST(NULL AS VARCHAR)"
    )
    recipients = (
        " UNION ALL BY NAME ".join(_recipients_sql(rules, p, dims) for p in rules.shared_pools)
        if rules.shared_pools
        else (
            "SELECT CAST(NULL AS VARCHAR) AS pool_name, CAST(NULL AS DATE) AS charge_date, "
            "CAST(NULL AS VARCHAR) AS BillingCurrency, CAST(NULL AS VARCHAR) AS provider_key, "
            + ", ".join(f"CAST(NULL AS VARCHAR) AS {q(d)}" for d in dims)
            + ", CAST(NULL AS DOUBLE) AS weight WHERE false"
        )
    )
    split_methods = " ".join(
        f"WHEN {sql_literal(p.name)} THEN {sql_literal(p.split)}" for p in rules.shared_pools
    )
    split_method_sql = f"CASE pool_name {split_methods} END" if split_methods else "NULL"
    pool_sums = ", ".join(f"sum({q(m)}) AS pool_{m}" for m in SPLIT_MEASURES)
    dim_list = ", ".join(q(d) for d in dims)
    r_dims = ", ".join(f"r.{q(d)}" for d in dims)
    default_dims = ", ".join(
        f"coalesce({sql_literal(v) if v is not None else 'NULL'}, {missing[d]}) AS {q(d)}"
        for d, v in _owner_dimensions(rules, rules.default_pool).items()
    )
    narrow_columns = sorted(
        {
            *(c for c in POOL_GROUP_COLUMNS if c in columns),
            *(c for c in MATCHABLE_COLUMNS if c in columns),
            *SPLIT_MEASURES,
            *(c for c in METRIC_COLUMNS if c in columns),
            "charge_date",
            "Tags",
            "x_DeliveryId",
            "x_SourceFile",
        }
    )

    def classified_sql(select: str) -> str:
        """The window's rows with their rule, owner and dimensions. Written as a subquery (not a
        shared CTE) so the wide rows stream once instead of being materialized."""
        return f"""
            SELECT classified.* EXCLUDE (owner, inherited_owner, inherited_detail,
                                         {", ".join(f"{q(f'{a}_{d}')}" for a, _ in tag_joins for d in dims)},
                                         {", ".join(f"{q(f'{a}_{d}')}" for a, _, _ in lookups for d in dims)}),
                   {dimension_columns},
                   CASE x_AllocationRule
                        WHEN 'commitment_pool' THEN 'commitments pool ' || {commitment_owner}
                        WHEN 'resource_tag' THEN 'tag ' || {sql_literal(owner_dim)}
                        WHEN 'inherited' THEN inherited_detail
                        WHEN 'shared_pool' THEN 'pool ' || pool_name
                        ELSE CASE WHEN {default_owner} IS NULL THEN 'no owner: kept visible'
                                  ELSE 'default pool ' || {default_owner} END
                   END AS x_AllocationDetail
            FROM (
                SELECT *, CASE WHEN x_AllocationRule = 'default_pool' THEN {default_owner}
                               WHEN x_AllocationRule = 'shared_pool' THEN NULL
                               ELSE inherited_owner END AS owner
                FROM (
                    SELECT {select}, {classified_dims},
                           {", ".join(f"{a}_h.{q(d)} AS {q(f'{a}_{d}')}" for a, _, _ in lookups for d in dims)},
                           tag_dims.{q(owner_dim)} IS NOT NULL AS x_OwnerTagged,
                           CASE WHEN {pool_flag} THEN 'commitment_pool'
                                WHEN tag_dims.{q(owner_dim)} IS NOT NULL THEN 'resource_tag'
                                WHEN coalesce({", ".join(inherited_owner_terms)}) IS NOT NULL
                                     THEN 'inherited'
                                WHEN ({pool_name}) IS NOT NULL THEN 'shared_pool'
                                ELSE 'default_pool' END AS x_AllocationRule,
                           CASE WHEN {pool_flag} THEN {commitment_owner}
                                WHEN tag_dims.{q(owner_dim)} IS NOT NULL
                                     THEN tag_dims.{q(owner_dim)}
                                ELSE coalesce({", ".join(inherited_owner_terms)}) END
                               AS inherited_owner,
                           CASE {inherited_detail} END AS inherited_detail,
                           {pool_name} AS pool_name
                    FROM {amortized_table} AS src
                    {dim_joins}
                    {tag_flags_join}
                    {" ".join(join for _, join, _ in lookups)}
                    WHERE {_window(days).replace("charge_date", "src.charge_date")}
                )
            ) AS classified
            LEFT JOIN {owners} ON owners.owner = classified.owner
        """

    # The distinct tag-like values of the window: dimensions are resolved once per value.
    distinct_columns = [c for _, c in tag_joins] + (
        ["x_ProjectAncestors"] if "x_ProjectAncestors" in columns else []
    )
    narrow_select = ", ".join(f"src.{q(c)}" for c in narrow_columns if c in columns)
    return f"""
        WITH src AS (SELECT DISTINCT {", ".join(q(c) for c in distinct_columns)}
                     FROM {amortized_table} WHERE {_window(days)}),
        {dim_ctes},
        {ancestors_cte}
        {tag_flags_cte}
        classified AS ({classified_sql(narrow_select)}),
        direct_rows AS (SELECT * FROM classified WHERE x_AllocationRule <> 'shared_pool'),
        pooled AS (
            SELECT {group}, pool_name, {provider_key_sql} AS provider_key,
                   {pool_sums}, count(*) AS x_PooledRows,
                   string_agg(DISTINCT x_DeliveryId, ',' ORDER BY x_DeliveryId) AS x_DeliveryId,
                   string_agg(DISTINCT x_SourceFile, ',' ORDER BY x_SourceFile) AS x_SourceFile,
                   row_number() OVER () AS pool_group
            FROM classified WHERE x_AllocationRule = 'shared_pool'
            GROUP BY ALL
        ),
        recipients AS ({recipients}),
        shares AS (
            SELECT pooled.*, {r_dims}, r.weight,
                   sum(r.weight) OVER (PARTITION BY pooled.pool_group) AS total_weight
            FROM pooled JOIN recipients AS r
              ON r.pool_name = pooled.pool_name AND r.charge_date = pooled.charge_date
             AND r.BillingCurrency = pooled.BillingCurrency
             AND r.provider_key IS NOT DISTINCT FROM pooled.provider_key
        ),
        split AS ({_largest_remainder_sql("shares", "pool_group", dim_list)}),
        unshared AS (
            SELECT pooled.* FROM pooled
            WHERE NOT EXISTS (SELECT 1 FROM recipients AS r
                              WHERE r.pool_name = pooled.pool_name
                                AND r.charge_date = pooled.charge_date
                                AND r.BillingCurrency = pooled.BillingCurrency
                                AND r.provider_key IS NOT DISTINCT FROM pooled.provider_key)
        )
        SELECT * EXCLUDE (pool_name),
               CAST(NULL AS VARCHAR) AS x_SharedPool,
               CAST(1 AS DOUBLE) AS x_AllocationShare,
               CAST(1 AS BIGINT) AS x_PooledRows
        FROM ({classified_sql("src.*")}) WHERE x_AllocationRule <> 'shared_pool'
        UNION ALL BY NAME
        SELECT * EXCLUDE (pool_name, provider_key, pool_group, weight, total_weight,
                          {", ".join(f"pool_{m}" for m in SPLIT_MEASURES)}),
               'shared_pool' AS x_AllocationRule,
               'pool ' || pool_name || ' split ' || {split_method_sql} AS x_AllocationDetail,
               pool_name AS x_SharedPool,
               weight / total_weight AS x_AllocationShare,
               false AS x_OwnerTagged, '{{}}' AS Tags
        FROM split
        UNION ALL BY NAME
        SELECT * EXCLUDE (pool_name, provider_key, pool_group,
                          {", ".join(f"pool_{m}" for m in SPLIT_MEASURES)}),
               {", ".join(f"pool_{m} AS {q(m)}" for m in SPLIT_MEASURES)},
               {default_dims},
               'default_pool' AS x_AllocationRule,
               'pool ' || pool_name || ': nobody to share with that day' AS x_AllocationDetail,
               pool_name AS x_SharedPool, CAST(1 AS DOUBLE) AS x_AllocationShare,
               false AS x_OwnerTagged, '{{}}' AS Tags
        FROM unshared
    """
