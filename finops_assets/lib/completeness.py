"""Which days are complete enough for insights, per source and for a series of several sources.

Loading already waits for complete *deliveries* (manifests, status flags, settle times); this
module answers the next question: is the *day* final? The newest days of a month-to-date export
are still filling in (AWS rewrites the latest day of its CUR several times a day, Azure's
exports lag about 36 hours, GCP adds late rows after a day's watermark settled), so:

- Day D of source S is **complete** once S has delivered a day at least ``settle_days[S]`` after
  D (``../shared/DOMAIN.md`` §2, §9: the fixed delays AWS and Azure apply to every day, we apply
  only to the newest days of each source, since we see what each source actually delivered).
- S **delivers** D when S has rows on or before D and its newest day is at most
  ``retired_after_days`` before D (a retired account does not hold later days back).
- A day is complete for a series when every source that delivers it is complete on it: a late
  GCP export holds back the series GCP cost flows into, not an AWS-only team's.

Pure Python and numpy: the per-source day lists come from the warehouse (``loaded_days_sql``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from finops_assets.lib.rules import CompletenessRules


def loaded_days_sql(table: str) -> str:
    """Per source (``x_Source``): the first and the newest day of ``table`` with rows."""
    return f"""
        SELECT x_Source AS source, min(charge_date) AS first_day, max(charge_date) AS newest_day
        FROM {table} GROUP BY x_Source ORDER BY x_Source
    """


@dataclass(frozen=True)
class SourceDays:
    source: str
    first_day: date
    newest_day: date


@dataclass(frozen=True)
class Completeness:
    """Per source, for every day of ``[start, end]``: delivered-by and complete flags."""

    start: date
    end: date
    sources: Mapping[str, SourceDays]
    settle_days: Mapping[str, int]
    delivers: Mapping[str, np.ndarray]
    complete: Mapping[str, np.ndarray]

    @classmethod
    def build(
        cls, start: date, end: date, sources: Iterable[SourceDays], rules: CompletenessRules
    ) -> Completeness:
        n = (end - start).days + 1
        ordinals = np.arange(start.toordinal(), start.toordinal() + n)
        by_name = {s.source: s for s in sources}
        delivers, complete, settle = {}, {}, {}
        for name, s in by_name.items():
            settle[name] = int(rules.settle_days.get(name, 1))
            first, newest = s.first_day.toordinal(), s.newest_day.toordinal()
            delivers[name] = (ordinals >= first) & (ordinals <= newest + rules.retired_after_days)
            complete[name] = (ordinals >= first) & (ordinals <= newest - settle[name])
        return cls(start, end, by_name, settle, delivers, complete)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def complete_through(self, source: str) -> date:
        s = self.sources[source]
        return s.newest_day - timedelta(days=self.settle_days[source])

    def for_sources(self, names: Sequence[str]) -> np.ndarray:
        """Complete flag per day for a series fed by ``names``: some source delivers the day and
        every source that delivers it is complete (before any source's first day there is no
        data to call zero)."""
        n = (self.end - self.start).days + 1
        result = np.ones(n, dtype=bool)
        delivered = np.zeros(n, dtype=bool)
        for name in names:
            if name in self.sources:
                result &= self.complete[name] | ~self.delivers[name]
                delivered |= self.delivers[name]
        return result & delivered

    def waiting_on(self, names: Sequence[str], day: date) -> list[str]:
        """The sources of ``names`` that hold ``day`` back, each with what it has delivered."""
        i = (day - self.start).days
        waiting = []
        for name in sorted(set(names)):
            if name in self.sources and self.delivers[name][i] and not self.complete[name][i]:
                s = self.sources[name]
                waiting.append(
                    f"{name} delivered through {s.newest_day.isoformat()}, complete through "
                    f"{self.complete_through(name).isoformat()}"
                )
        return waiting

    def summary(self, names: Sequence[str] | None = None) -> str:
        """One line a person can read: each source and the day it is complete through."""
        names = sorted(self.sources) if names is None else sorted(set(names))
        return "; ".join(
            f"{n} complete through {self.complete_through(n).isoformat()}"
            for n in names
            if n in self.sources
        )
