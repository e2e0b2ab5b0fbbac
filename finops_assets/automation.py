"""How restated days flow downstream without anyone launching a backfill.

``AutomationCondition.eager()`` only looks at the latest time partition, but providers restate
whole past months (DOMAIN §1): when the sensors reload older days of a raw table, those same days
must be rebuilt in every table below it. This condition is eager's rule applied to every daily
partition that is updated upstream, without eager's "newly missing" part (which would try to build
all history the first time the condition is evaluated).
"""

import dagster as dg

RESTATED_DAYS_PROPAGATE = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("rebuild every day whose upstream day was reloaded")
