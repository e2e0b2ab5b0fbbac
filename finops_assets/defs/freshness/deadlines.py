"""Delivery deadlines per source (rules YAML ``freshness``), evaluated against the instance; the
checks and the sensor that evaluate them are in ``sensors.py``.

Day D of a source is due ``sla_hours`` after D ends (UTC). The freshness of a raw table is judged
on the newest due day: it passes when that day, or a later one, was loaded with rows by a
materialization. A source that has never been seen delivering (no delivery observation from its
sensor) is not monitored: a team that does not use a provider gets no alerts, and neither do
hand-launched backfills of sample data.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from finops_assets.lib.rules import SourceFreshness
from finops_assets.sources import SOURCE_NAMES

CHECK_NAME = "delivered_on_time"
RAW_KEYS = {source: dg.AssetKey(["raw", source]) for source in SOURCE_NAMES}


def due_day(now: datetime, sla_hours: float) -> date:
    """The newest charge day whose deadline (end of day + SLA) has passed at ``now``."""
    return (now.astimezone(UTC) - timedelta(hours=sla_hours)).date() - timedelta(days=1)


@dataclass(frozen=True)
class Freshness:
    source: str
    passed: bool
    monitored: bool
    due: date
    latest_loaded: date | None
    description: str

    def metadata(self, sla: SourceFreshness) -> dict[str, dg.MetadataValue]:
        return {
            "sla_hours": dg.MetadataValue.float(sla.sla_hours),
            "due_day": dg.MetadataValue.text(self.due.isoformat()),
            "latest_loaded_day": dg.MetadataValue.text(
                self.latest_loaded.isoformat() if self.latest_loaded else ""
            ),
            "monitored": dg.MetadataValue.bool(self.monitored),
            "days_late": dg.MetadataValue.int(
                max(0, (self.due - self.latest_loaded).days) if self.latest_loaded else 0
            ),
        }


def _loaded_with_rows(record) -> bool:
    materialization = record.asset_materialization
    count = materialization.metadata.get("dagster/row_count") if materialization else None
    return count is not None and (count.value or 0) > 0


def evaluate_freshness(
    instance: dg.DagsterInstance,
    source: str,
    sla: SourceFreshness,
    now: datetime,
    first_day: date,
) -> Freshness:
    key = RAW_KEYS[source]
    due = due_day(now, sla.sla_hours)
    if due < first_day:
        return Freshness(source, True, True, due, None, f"No day of {source} is due yet.")
    last_day = now.astimezone(UTC).date() - timedelta(days=1)
    days = [due + timedelta(days=i) for i in range((last_day - due).days + 1)]
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[d.isoformat() for d in days]),
        limit=1000,
    ).records
    loaded = sorted(
        {
            date.fromisoformat(r.partition_key)
            for r in records
            if r.partition_key and _loaded_with_rows(r)
        }
    )
    if loaded:
        return Freshness(
            source,
            True,
            True,
            due,
            loaded[-1],
            f"{key.to_user_string()} has {due} (due {sla.sla_hours:g} h after the day ended).",
        )
    if not instance.fetch_observations(key, limit=1).records:
        return Freshness(
            source,
            True,
            False,
            due,
            None,
            f"{source} has never delivered here: not monitored until its first delivery.",
        )
    latest_day = None
    older = instance.fetch_materializations(key, limit=200).records
    with_rows = [
        date.fromisoformat(r.partition_key)
        for r in older
        if r.partition_key and _loaded_with_rows(r)
    ]
    if with_rows:
        latest_day = max(with_rows)
    deadline = datetime(due.year, due.month, due.day, tzinfo=UTC) + timedelta(
        days=1, hours=sla.sla_hours
    )
    return Freshness(
        source,
        False,
        True,
        due,
        latest_day,
        f"{key.to_user_string()} is late: {due} was due by {deadline:%Y-%m-%d %H:%M}Z "
        f"({sla.sla_hours:g} h SLA) and is not loaded; newest loaded day: "
        f"{latest_day or 'none'}. Check the provider's export and the "
        f"{source} delivery sensor's skip reasons.",
    )
