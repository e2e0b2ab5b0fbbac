"""Every object under a source's landing root is accounted for (DESIGN §3): loaded, superseded by a
newer delivery, waiting to become complete, ignored on purpose (a manifest, a status table), or
not understood, with the reason and the layout that was expected. No Dagster here: each source's
``deliveries.py`` has an ``account_landing(landing, rules, now)`` returning ``Accounted`` rows,
and ``defs/sources/shared.build_landing_accounted_check`` turns them into a warning check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

STATUSES = ("loaded", "superseded", "waiting", "metadata", "not_understood")


@dataclass(frozen=True)
class Accounted:
    key: str  # landing key of the object
    status: str  # one of STATUSES
    reason: str = ""  # for waiting / not_understood: why, and what layout was expected
    delivery_id: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; use one of {STATUSES}")


def account(
    keys: Iterable[str],
    loaded: set[str] = frozenset(),
    superseded: set[str] = frozenset(),
    metadata: set[str] = frozenset(),
    waiting: dict[str, str] | None = None,
    not_understood_reason: str = "",
) -> list[Accounted]:
    """Sort ``keys`` into statuses; a key in none of the sets is not understood, with
    ``not_understood_reason`` (which should name the layout expected)."""
    waiting = waiting or {}
    out = []
    for key in sorted(set(keys)):
        if key in loaded:
            out.append(Accounted(key, "loaded"))
        elif key in waiting:
            out.append(Accounted(key, "waiting", waiting[key]))
        elif key in superseded:
            out.append(Accounted(key, "superseded"))
        elif key in metadata:
            out.append(Accounted(key, "metadata"))
        else:
            out.append(Accounted(key, "not_understood", not_understood_reason))
    return out


def summary(rows: Sequence[Accounted]) -> tuple[dict[str, int], list[Accounted]]:
    """Counts per status, and the objects not understood."""
    counts = Counter(r.status for r in rows)
    return {s: counts.get(s, 0) for s in STATUSES}, [
        r for r in rows if r.status == "not_understood"
    ]
