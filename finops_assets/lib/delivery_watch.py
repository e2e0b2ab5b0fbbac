"""What the delivery sensors decide, without Dagster: which days of which delivery to load.

A sensor scans its source's landing layout and describes every delivery it finds as a
``Candidate``: the stream it belongs to (one export / report / dataset), the billing period (or
usage day) it replaces, its id, when it was created, the charge days it covers, and which of those
days are complete (or why not). ``plan`` compares the candidates with what was already requested
(the sensor cursor, ``WatchState``) and returns the days to request, per delivery:

* each (day, delivery id) is requested exactly once; a restated month (a new delivery id for the
  same stream and period) requests every day it covers again;
* only the newest complete delivery of a stream and period counts: an older one, or one that is
  older than the delivery already loaded, is skipped with its reason;
* an incomplete or unreadable delivery is a skip with the reason (no manifest yet, a file it names
  is missing, Recency says a day is not complete, ``x_DatasetCompletionStatus = Incomplete``, a
  GCP watermark that has not settled yet);
* days after the last partition (today) wait until their partition exists, then are requested.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from finops_assets.lib.deliveries import parse_timestamp

STATE_VERSION = 1


@dataclass(frozen=True)
class Candidate:
    stream: str  # e.g. "aws-cur/<report>", "focus/<provider>/<dataset>", "gcp/<account>"
    period: str  # YYYY-MM (a month a delivery replaces) or YYYY-MM-DD (a GCP usage day)
    delivery_id: str
    created_at: datetime | None
    where: str  # URL of the manifest / folder, for messages
    days: tuple[date, ...] = ()  # charge days the delivery covers
    # Days of ``days`` that must not be loaded yet, with the reason (Recency, status column).
    incomplete_days: dict[date, str] = field(default_factory=dict)
    complete: bool = True
    reason: str = ""  # why the whole delivery is not loadable (when not complete)
    files: int = 0
    target: str = ""  # asset key path ("raw/focus") the delivery loads into

    @property
    def key(self) -> str:
        return f"{self.stream}|{self.period}"


@dataclass
class Loaded:
    delivery_id: str
    created_at: str | None  # ISO timestamp
    days: set[str]  # ISO days requested for this delivery


@dataclass
class WatchState:
    """The sensor cursor: per stream|period, the delivery whose days were requested, and the
    observation last reported per delivery (so the UI gets one observation per change)."""

    loaded: dict[str, Loaded] = field(default_factory=dict)
    observed: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> WatchState:
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
        except json.JSONDecodeError:
            return cls()
        if not isinstance(data, dict) or data.get("v") != STATE_VERSION:
            return cls()
        return cls(
            loaded={
                k: Loaded(v["id"], v.get("created_at"), set(v.get("days", [])))
                for k, v in data.get("loaded", {}).items()
            },
            observed=dict(data.get("observed", {})),
        )

    def to_cursor(self) -> str:
        return json.dumps(
            {
                "v": STATE_VERSION,
                "loaded": {
                    k: {"id": v.delivery_id, "created_at": v.created_at, "days": sorted(v.days)}
                    for k, v in sorted(self.loaded.items())
                },
                "observed": dict(sorted(self.observed.items())),
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class Request:
    """One run: a target asset's contiguous days, for the deliveries that brought them."""

    target: str
    start: date
    end: date
    deliveries: tuple[Candidate, ...]

    @property
    def run_key(self) -> str:
        ids = sorted(f"{c.stream}|{c.period}|{c.delivery_id}" for c in self.deliveries)
        digest = hashlib.sha1("\n".join(ids).encode()).hexdigest()[:16]
        return f"{self.target}|{self.start}..{self.end}|{digest}"


@dataclass
class Plan:
    requests: list[Request] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)  # one line per delivery not (fully) loaded
    # Candidates whose observable state changed since the last tick: (candidate, summary).
    observations: list[tuple[Candidate, dict]] = field(default_factory=list)


def month_days(period: str) -> tuple[date, ...]:
    first = date(int(period[:4]), int(period[5:7]), 1)
    following = (first + timedelta(days=32)).replace(day=1)
    return tuple(first + timedelta(days=i) for i in range((following - first).days))


def contiguous(days: Iterable[date]) -> list[tuple[date, date]]:
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][1] + timedelta(days=1) == day:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _older(candidate: Candidate, loaded: Loaded) -> bool:
    if candidate.created_at is None or loaded.created_at is None:
        return False
    return candidate.created_at < datetime.fromisoformat(loaded.created_at)


def _summary(candidate: Candidate, status: str, detail: str, requested: Sequence[date]) -> dict:
    return {
        "delivery_id": candidate.delivery_id,
        "stream": candidate.stream,
        "period": candidate.period,
        "status": status,
        "detail": detail,
        "created_at": _iso(candidate.created_at) or "",
        "files": candidate.files,
        "days_covered": len(candidate.days),
        "days_incomplete": len(candidate.incomplete_days),
        "days_requested": [d.isoformat() for d in requested],
        "where": candidate.where,
    }


def plan(
    candidates: Sequence[Candidate],
    state: WatchState,
    first_day: date,
    last_day: date | None,
) -> Plan:
    """Decide what to request for ``candidates`` and update ``state`` in place.

    ``first_day``..``last_day`` are the partitions that exist (``last_day`` None: none yet).
    """
    result = Plan()
    wanted: dict[str, dict[date, list[Candidate]]] = {}
    newest: dict[str, Candidate] = {}
    for c in candidates:
        if not c.complete:
            continue
        current = newest.get(c.key)
        if current is None or (c.created_at or datetime.min.replace(tzinfo=UTC), c.delivery_id) > (
            current.created_at or datetime.min.replace(tzinfo=UTC),
            current.delivery_id,
        ):
            newest[c.key] = c
    for c in sorted(candidates, key=lambda c: (c.key, c.delivery_id)):
        requested: list[date] = []
        loaded = state.loaded.get(c.key)
        if not c.complete:
            status, detail = "incomplete", c.reason
            result.skips.append(f"{c.where}: {c.reason}")
        elif newest[c.key] is not c:
            winner = newest[c.key]
            status = "superseded"
            detail = f"a newer delivery {winner.delivery_id} of the same period is loaded instead"
        elif loaded is not None and loaded.delivery_id != c.delivery_id and _older(c, loaded):
            status = "older"
            detail = (
                f"older ({_iso(c.created_at)}) than the delivery already loaded "
                f"({loaded.delivery_id}, {loaded.created_at}); not loaded"
            )
            result.skips.append(f"{c.where}: {detail}")
        else:
            if loaded is None or loaded.delivery_id != c.delivery_id:
                loaded = Loaded(c.delivery_id, _iso(c.created_at), set())
                state.loaded[c.key] = loaded
            waiting = []
            for day in c.days:
                if day < first_day or day.isoformat() in loaded.days:
                    continue
                if day in c.incomplete_days:
                    continue
                if last_day is None or day > last_day:
                    waiting.append(day)
                    continue
                requested.append(day)
            for day in requested:
                wanted.setdefault(c.target, {}).setdefault(day, []).append(c)
            loaded.days.update(d.isoformat() for d in requested)
            notes = []
            if c.incomplete_days:
                first_reason = next(iter(sorted(c.incomplete_days.items())))
                notes.append(
                    f"{len(c.incomplete_days)} day(s) not complete yet, e.g. "
                    f"{first_reason[0]}: {first_reason[1]}"
                )
                result.skips.append(f"{c.where}: {notes[-1]}")
            if waiting:
                notes.append(f"{len(waiting)} day(s) wait for their partition (from {waiting[0]})")
            status = "complete" if not c.incomplete_days else "partly complete"
            detail = "; ".join(notes) or "every covered day requested"
        summary = _summary(c, status, detail, requested)
        fingerprint = json.dumps(
            {k: v for k, v in summary.items() if k != "days_requested"}, sort_keys=True
        )
        observed_key = f"{c.key}|{c.delivery_id}"
        if requested or state.observed.get(observed_key) != fingerprint:
            state.observed[observed_key] = fingerprint
            result.observations.append((c, summary))
    # Deliveries of the same table and days share a run (the raw asset loads every current
    # delivery of a day at once).
    for target, by_day in sorted(wanted.items()):
        for start, end in contiguous(by_day):
            brought: dict[str, Candidate] = {}
            for day in by_day:
                if start <= day <= end:
                    for c in by_day[day]:
                        brought[f"{c.key}|{c.delivery_id}"] = c
            result.requests.append(Request(target, start, end, tuple(brought.values())))
    # Forget observations of deliveries that are gone from the landing zone.
    present = {f"{c.key}|{c.delivery_id}" for c in candidates}
    for key in [k for k in state.observed if k not in present]:
        del state.observed[key]
    return result


# --- FOCUS 1.3 Recency metadata -------------------------------------------------------------


class RecencyError(ValueError):
    pass


def _recency_time(value: object, where: str, name: str) -> datetime:
    return parse_timestamp(value, where, name, "2025-01-27T00:00:00Z", RecencyError)


def recency_incomplete_days(
    recency_bytes: bytes, where: str, days: Iterable[date]
) -> dict[date, str]:
    """Days not complete per a FOCUS 1.3 Recency object (or a list of them): a day is complete
    when the dataset instance is complete, or when complete time sectors cover all of it."""
    try:
        data = json.loads(recency_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecencyError(f"{where}: Recency metadata is not valid JSON ({error})") from None
    objects = data if isinstance(data, list) else [data]
    sectors: list[tuple[datetime, datetime, bool]] = []
    instance_complete = False
    for obj in objects:
        if not isinstance(obj, dict):
            raise RecencyError(f"{where}: Recency must be an object or a list of objects")
        if obj.get("DatasetInstanceComplete") is True:
            instance_complete = True
        raw_sectors = obj.get("TimeSectors", [])
        if not isinstance(raw_sectors, list):
            raise RecencyError(f"{where}: TimeSectors must be a list")
        for sector in raw_sectors:
            if not isinstance(sector, dict):
                raise RecencyError(f"{where}: each TimeSectors entry must be an object")
            complete = sector.get("TimeSectorComplete")
            if not isinstance(complete, bool):
                raise RecencyError(
                    f"{where}: TimeSectorComplete must be true or false, got {complete!r}"
                )
            sectors.append(
                (
                    _recency_time(sector.get("TimeSectorStart"), where, "TimeSectorStart"),
                    _recency_time(sector.get("TimeSectorEnd"), where, "TimeSectorEnd"),
                    complete,
                )
            )
    if instance_complete:
        return {}
    result: dict[date, str] = {}
    for day in days:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        overlapping = sorted(s for s in sectors if s[0] < end and s[1] > start)
        open_sector = next((s for s in overlapping if not s[2]), None)
        if open_sector is not None:
            result[day] = (
                f"Recency marks {open_sector[0]:%Y-%m-%d %H:%M}..{open_sector[1]:%H:%M}Z "
                "not complete"
            )
            continue
        covered = start
        for s_start, s_end, _ in overlapping:
            if s_start > covered:
                break
            covered = max(covered, s_end)
        if covered < end:
            result[day] = f"Recency has no complete time sector from {covered:%Y-%m-%d %H:%M}Z"
    return result


# --- GCP billing export dumps ------------------------------------------------------------------
# Scans reuse what earlier ticks read (the sensor runs in the long-lived code server process):
# a delivery's files are read once per (landing zone, files with their sizes and times).
_READ_CACHE: dict[tuple, object] = {}


def cached(key: tuple, compute: Callable[[], object]):
    if key not in _READ_CACHE:
        if len(_READ_CACHE) > 4096:
            _READ_CACHE.clear()
        _READ_CACHE[key] = compute()
    return _READ_CACHE[key]
