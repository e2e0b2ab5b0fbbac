"""Landing zones: where providers drop billing exports.

One small interface (list deliveries under a prefix, stat, read bytes, get local files for the
engine) so the loaders never care whether the files sit in a folder, S3 or GCS. Keys are always
relative, '/'-separated, and may never escape the landing root.
"""

from __future__ import annotations

import contextlib
import os
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import dagster as dg


class LandingKeyError(ValueError):
    """A key that is absolute or climbs out of the landing root (a path trick in a manifest)."""


@dataclass(frozen=True)
class LandingObject:
    key: str
    size: int
    modified: datetime


def safe_key(key: str, *, base: str = "") -> str:
    """Join ``key`` under ``base`` and refuse anything that leaves the landing root."""
    if not isinstance(key, str) or not key or "\x00" in key or "\\" in key:
        raise LandingKeyError(f"invalid landing key {key!r}")
    if key.startswith("/") or (len(key) > 1 and key[1] == ":"):
        raise LandingKeyError(f"absolute path {key!r} is not allowed in a landing key")
    joined = PurePosixPath(base) / key if base else PurePosixPath(key)
    parts: list[str] = []
    for part in joined.parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise LandingKeyError(f"key {key!r} escapes the landing root")
            parts.pop()
        else:
            parts.append(part)
    result = "/".join(parts)
    if base and not (result + "/").startswith(str(PurePosixPath(base)).rstrip("/") + "/"):
        raise LandingKeyError(f"key {key!r} escapes its delivery folder {base!r}")
    return result


class LandingZone(dg.ConfigurableResource):
    """Read-only access to a landing zone."""

    @abstractmethod
    def url(self, key: str = "") -> str:
        """Human-readable location of a key, for messages and lineage."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[LandingObject]:
        """Every object under ``prefix`` (recursive), sorted by key."""

    @abstractmethod
    def stat(self, key: str) -> LandingObject | None:
        """The object at ``key``, or None when it does not exist."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    @contextlib.contextmanager
    def local_files(self, keys: Sequence[str]) -> Iterator[dict[str, str]]:
        """Local paths for ``keys`` that DuckDB/Arrow can read, valid inside the context."""


class LocalLandingZone(LandingZone):
    """A landing zone in a local folder (the embedded default, ``data/landing``)."""

    root: str

    def _root(self) -> Path:
        return Path(self.root).resolve()

    def _path(self, key: str) -> Path:
        key = safe_key(key)
        root = self._root()
        path = (root / key).resolve()
        # Symlinks could still point outside the root.
        if path != root and root not in path.parents:
            raise LandingKeyError(f"key {key!r} resolves outside the landing root {root}")
        return path

    def url(self, key: str = "") -> str:
        return str(self._root() / key) if key else str(self._root())

    def list(self, prefix: str = "") -> list[LandingObject]:
        base = self._path(prefix) if prefix else self._root()
        if not base.exists():
            return []
        root = self._root()
        objects = []
        for dirpath, _dirnames, filenames in os.walk(base):
            for name in filenames:
                path = Path(dirpath) / name
                try:
                    st = path.stat()
                except FileNotFoundError:  # removed while listing
                    continue
                objects.append(
                    LandingObject(
                        key=path.relative_to(root).as_posix(),
                        size=st.st_size,
                        modified=datetime.fromtimestamp(st.st_mtime, UTC),
                    )
                )
        return sorted(objects, key=lambda o: o.key)

    def stat(self, key: str) -> LandingObject | None:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return LandingObject(
            key=key, size=st.st_size, modified=datetime.fromtimestamp(st.st_mtime, UTC)
        )

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    @contextlib.contextmanager
    def local_files(self, keys: Sequence[str]) -> Iterator[dict[str, str]]:
        yield {key: str(self._path(key)) for key in keys}


def landing_zone_from_url(url: str) -> LandingZone:
    if url.startswith(("s3://", "gs://")):
        raise ValueError(
            f"FINOPS_LANDING_URL={url!r}: S3 and GCS landing zones are not available in this "
            "version yet; use a local folder path (default data/landing)."
        )
    if "://" in url:
        raise ValueError(
            f"FINOPS_LANDING_URL={url!r}: use a folder path, s3://bucket/prefix or gs://bucket/prefix"
        )
    return LocalLandingZone(root=str(Path(url).absolute()))
