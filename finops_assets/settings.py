"""Environment settings (DESIGN §2). Read when definitions are built, never at import time."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from finops_assets.sources import LANDING_ROOTS

DEFAULT_LANDING_URL = "data/landing"
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
DEFAULT_START_DATE = "2025-01-01"

# The top-level folders of a landing zone, one per export family (DESIGN §3), from the registry.
# FINOPS_LANDING_URL_AWS_CUR, ... : one landing zone per root, for teams that keep AWS exports in
# S3 and GCP exports in GCS. Each URL contains the `<root>/` folder, like FINOPS_LANDING_URL.
LANDING_ROUTE_ENV_VARS = {
    root: "FINOPS_LANDING_URL_" + root.upper().replace("-", "_") for root in LANDING_ROOTS
}

LANDING_URL_FORMS = (
    "a folder path (e.g. data/landing), s3://bucket[/prefix] or gs://bucket[/prefix]"
)
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_GCS_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class LandingLocation:
    """A parsed landing URL: ``scheme`` is "file", "s3" or "gs"; ``path`` is the folder for
    "file" and the bucket prefix (no leading or trailing '/') otherwise."""

    scheme: str
    bucket: str
    path: str


def parse_landing_url(url: str, env_var: str = "FINOPS_LANDING_URL") -> LandingLocation:
    """Split a landing URL, or say which variable is wrong and which forms are accepted."""

    def problem(reason: str) -> SettingsError:
        return SettingsError(f"{env_var}={url!r}: {reason}; use {LANDING_URL_FORMS}")

    if not url or not url.strip():
        raise problem("empty")
    scheme, sep, rest = url.partition("://")
    if not sep:
        if re.match(r"(?i)(s3|gs|gcs):", url):
            raise problem("malformed bucket URL")
        return LandingLocation("file", "", url)
    if scheme not in ("s3", "gs"):
        raise problem(f"{scheme}:// is not supported")
    bucket, _, prefix = rest.partition("/")
    pattern = _S3_BUCKET if scheme == "s3" else _GCS_BUCKET
    if not pattern.fullmatch(bucket):
        raise problem(
            f"{bucket!r} is not a valid bucket name (3-63 lowercase letters, digits, '-' or '.')"
        )
    prefix = prefix.strip("/")
    parts = prefix.split("/") if prefix else []
    if any(p in ("", ".", "..") for p in parts) or re.search(r"[\\?#\x00]", prefix):
        raise problem(f"prefix {prefix!r} must be plain '/'-separated folder names")
    return LandingLocation(scheme, bucket, prefix)


def parse_serving_url(url: str, env_var: str = "FINOPS_SERVING_URL") -> LandingLocation:
    """The bucket the serving zone is copied to: the landing URL rules, buckets only."""
    try:
        location = parse_landing_url(url, env_var)
    except SettingsError as error:
        buckets = "s3://bucket[/prefix] or gs://bucket[/prefix]"
        raise SettingsError(str(error).replace(LANDING_URL_FORMS, buckets)) from None
    if location.scheme == "file":
        raise SettingsError(
            f"{env_var}={url!r}: use s3://bucket/prefix or gs://bucket/prefix (the local "
            "serving zone is FINOPS_SERVING_DIR)"
        )
    return location


@dataclass(frozen=True)
class Settings:
    landing_url: str = DEFAULT_LANDING_URL
    warehouse: str = DEFAULT_WAREHOUSE
    start_date: str = DEFAULT_START_DATE
    config_path: str | None = None
    # (root, url) pairs from FINOPS_LANDING_URL_<ROOT>: these roots are read from their own
    # landing zone instead of landing_url.
    landing_routes: tuple[tuple[str, str], ...] = ()
    # Closed months (closed/<period>/v<n>/) and monthly reports: FINOPS_CLOSED_DIR, else beside
    # the warehouse file (data/closed, data/reports).
    closed_dir: str | None = None
    # The serving zone readers query (lib/serving.py): FINOPS_SERVING_DIR, else beside the
    # warehouse file (data/serving/ and its snapshot data/serving.duckdb).
    serving_dir: str | None = None
    # FINOPS_PUBLISH_URL: postgresql://... to replicate the marts into (lib/pg_publish.py).
    publish_url: str | None = None
    # FINOPS_SERVING_URL: s3://bucket/prefix or gs://bucket/prefix the serving zone is also
    # copied to after each publish (lib/serving_mirror.py).
    serving_url: str | None = None

    @property
    def serving_path(self) -> Path:
        return (
            Path(self.serving_dir) if self.serving_dir else Path(self.warehouse).parent / "serving"
        )

    @property
    def closed_path(self) -> Path:
        return Path(self.closed_dir) if self.closed_dir else Path(self.warehouse).parent / "closed"

    @property
    def reports_path(self) -> Path:
        return self.closed_path.parent / "reports"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls(
            landing_url=env.get("FINOPS_LANDING_URL") or DEFAULT_LANDING_URL,
            warehouse=env.get("FINOPS_WAREHOUSE") or DEFAULT_WAREHOUSE,
            start_date=env.get("FINOPS_START_DATE") or DEFAULT_START_DATE,
            config_path=env.get("FINOPS_CONFIG") or None,
            closed_dir=env.get("FINOPS_CLOSED_DIR") or None,
            serving_dir=env.get("FINOPS_SERVING_DIR") or None,
            publish_url=env.get("FINOPS_PUBLISH_URL") or None,
            serving_url=env.get("FINOPS_SERVING_URL") or None,
            landing_routes=tuple(
                (root, env[var]) for root, var in LANDING_ROUTE_ENV_VARS.items() if env.get(var)
            ),
        )
        try:
            date.fromisoformat(settings.start_date)
        except ValueError:
            raise SettingsError(
                f"FINOPS_START_DATE={settings.start_date!r} is not a date; use YYYY-MM-DD"
            ) from None
        if settings.warehouse.startswith(("s3://", "gs://", "md:")):
            raise SettingsError(
                f"FINOPS_WAREHOUSE={settings.warehouse!r}: the embedded warehouse is a local DuckDB "
                "file path (e.g. data/warehouse.duckdb)"
            )
        if settings.publish_url and not settings.publish_url.startswith(
            ("postgresql://", "postgres://")
        ):
            raise SettingsError(
                "FINOPS_PUBLISH_URL must be a postgresql://user:password@host:port/database URL"
            )
        parse_landing_url(settings.landing_url)
        if settings.serving_url:
            parse_serving_url(settings.serving_url)
        for root, url in settings.landing_routes:
            parse_landing_url(url, LANDING_ROUTE_ENV_VARS[root])
        return settings
