"""What every source's delivery discovery shares, without Dagster: the error a broken delivery raises,
manifest JSON, the landing objects a listing returns, data file formats, timestamps and billing
periods.

Each provider's own layouts and manifests live in ``defs/sources/<provider>/deliveries.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

DATA_SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".csv.gz": "csv"}  # .snappy.parquet too


class DeliveryError(ValueError):
    """A delivery that claims to be complete but cannot be loaded as it is."""


def load_manifest_json(manifest_bytes: bytes, where: str, what: str, until: str) -> object:
    """A manifest's JSON, or a DeliveryError naming the manifest and what happens until it is
    rewritten (``until``)."""
    try:
        return json.loads(manifest_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DeliveryError(f"{where}: {what} is not valid JSON ({error}). {until}") from None


class ObjectLike(Protocol):
    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class DeliveryFile:
    key: str
    size: int
    format: str  # "parquet" | "csv"


def data_format(name: str) -> str | None:
    lowered = name.lower()
    for suffix, fmt in DATA_SUFFIXES.items():
        if lowered.endswith(suffix):
            return fmt
    return None


class ListedFiles:
    """The files one manifest lists, checked against the objects present, the same way for every
    provider: each listed once, Parquet or CSV, present, and not empty. ``where`` names the
    manifest; ``fix`` says what to do about a missing or cut-short file and what happens until
    then. With ``skip_empty`` a 0-byte file is a leftover to skip (AWS Data Exports leave them on
    a refresh) rather than a broken delivery; ``skipped`` lists them."""

    def __init__(
        self,
        present: Mapping[str, ObjectLike],
        where: str,
        fix: str,
        *,
        skip_empty: bool = False,
    ) -> None:
        self.present, self.where, self.fix, self.skip_empty = present, where, fix, skip_empty
        self.files: list[DeliveryFile] = []
        self.objects: list[ObjectLike] = []
        self.skipped: list[str] = []
        self._seen: set[str] = set()

    def add(self, key: str, shown: str) -> DeliveryFile | None:
        """Resolve landing ``key``, which the manifest lists as ``shown`` (how the error messages
        name it); the file, or None for a skipped zero-byte leftover."""
        where = self.where
        if key in self._seen:
            raise DeliveryError(f"{where}: {shown} is listed twice; each file counts once")
        self._seen.add(key)
        fmt = data_format(key)
        if fmt is None:
            raise DeliveryError(
                f"{where}: {shown} is neither Parquet nor CSV (.parquet, .csv, .csv.gz)"
            )
        obj = self.present.get(key)
        if obj is None:
            raise DeliveryError(
                f"{where}: manifest lists {shown} but the file is missing. Fix: {self.fix}"
            )
        if obj.size == 0:
            if self.skip_empty:
                self.skipped.append(key)
                return None
            raise DeliveryError(
                f"{where}: {shown} is empty (0 bytes); the copy was cut short. Fix: {self.fix}"
            )
        file = DeliveryFile(key=key, size=obj.size, format=fmt)
        self.files.append(file)
        self.objects.append(obj)
        return file


def parse_timestamp(
    value: object,
    where: str,
    name: str,
    example: str = "2025-02-01T06:00:00Z",
    error: type[ValueError] = DeliveryError,
) -> datetime:
    """An ISO-8601 timestamp from a manifest or metadata file, in UTC when it names no zone.
    Lenient where producers are: a lowercase ``z``, and single-digit hours as in the FOCUS
    specification's own examples (``T0:00:00Z``). Anything else raises ``error`` naming ``where``
    and ``name``."""
    if not isinstance(value, str):
        raise error(f"{where}: {name} must be an ISO-8601 timestamp, got {value!r}")
    text = value.strip().replace("z", "Z").replace("Z", "+00:00")
    if "T" in text:
        day, _, clock = text.partition("T")
        hour, _, rest = clock.partition(":")
        if len(hour) == 1:
            text = f"{day}T0{hour}:{rest}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise error(
            f"{where}: {name} {value!r} is not an ISO-8601 timestamp (e.g. {example})"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def add_months(period: str, months: int) -> str:
    year, month = int(period[:4]), int(period[5:7])
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def period_of_folder(folder: str) -> str:
    return f"{folder[:4]}-{folder[4:6]}"


def month_chunks(days: tuple[date, date]) -> list[tuple[date, date]]:
    """Split a day range at month boundaries (a month shares one set of deliveries)."""
    chunks, start = [], days[0]
    while start <= days[1]:
        next_month = (start.replace(day=1) + timedelta(days=32)).replace(day=1)
        end = min(days[1], next_month - timedelta(days=1))
        chunks.append((start, end))
        start = end + timedelta(days=1)
    return chunks
