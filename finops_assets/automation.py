"""How restated days flow downstream without anyone launching a backfill.

``AutomationCondition.eager()`` only looks at the latest time partition, but providers restate
whole past months (DOMAIN §1): when the sensors reload older days of a raw table, those same days
must be rebuilt in every table below it. The condition here is true for every daily partition
whose upstream day was updated *after* the partition itself was last built.

It compares timestamps instead of using ``any_deps_updated().since_last_handled()``. With that
form, a restatement lost its rebuild when it landed between two ticks in which the downstream
day was also updated (a rebuild of the previous delivery finishing just before the restated raw
day was written): both "a dep updated" and "handled" were true in one tick, the reset won, and the
restated day stayed stale downstream with nothing said. ``newly_updated`` carries the time of
each partition's newest materialization, so ``since`` can tell which came last. (A raw day cannot
be rewritten while the day below it is being built from it: both steps hold the single
``finops_warehouse`` pool slot, so "newer" is exact. Above 100 updated partitions in one tick
Dagster falls back to the tick's time for all of them, and then the downstream update wins.)

Also:
- Nothing is built on the first evaluation (no "newly missing": that would build all history).
- Days whose dependency will be requested in the same tick are requested with it, so a
  restated month is one backfill down the whole chain, not one per layer.
- A day whose rebuild failed is not retried on every tick; the next upstream update (a new
  delivery) tries again, and a manual run clears it.
"""

import dagster as dg

_AC = dg.AutomationCondition

# Both operands carry each partition's newest materialization time, which ``since`` compares.
_DEP_UPDATED = _AC.any_deps_match(_AC.newly_updated())

_DEP_NEWER = _DEP_UPDATED.since(_AC.newly_updated()).with_label(
    "a dependency day was updated after this day was built"
)

_FAILED_SINCE_DEP_UPDATE = (
    _AC.execution_failed()
    .newly_true()
    .since(_DEP_UPDATED)
    .with_label("its rebuild failed and nothing upstream changed since")
)

RESTATED_DAYS_PROPAGATE = (
    (_DEP_NEWER | _AC.any_deps_match(_AC.will_be_requested()))
    & ~_FAILED_SINCE_DEP_UPDATE
    & ~_AC.any_deps_in_progress()
    & ~_AC.in_progress()
).with_label("rebuild every day whose upstream day was reloaded")
