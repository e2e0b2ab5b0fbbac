"""Landing zones: where providers drop billing exports.

One small interface (list deliveries under a prefix, stat, read bytes, get local files for the
engine) so the loaders never care whether the files sit in a folder, S3 or GCS. Keys are always
relative, '/'-separated, and may never escape the landing root.

Bucket zones take credentials only from the provider SDK chain (environment, profile, instance
role, application default credentials) and their endpoint from the SDKs' own variables
(AWS_ENDPOINT_URL, STORAGE_EMULATOR_HOST), so nothing secret is ever part of the configuration.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar
from urllib.parse import urlsplit

import dagster as dg
import requests
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from dagster_aws.s3 import S3Resource
from dagster_gcp import GCSResource
from google.api_core.exceptions import (
    Forbidden,
    GoogleAPIError,
    NotFound,
    RetryError,
    Unauthorized,
)
from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError, RefreshError
from google.cloud.storage.retry import DEFAULT_RETRY as GCS_DEFAULT_RETRY

from finops_assets.settings import (
    LANDING_ROOTS,
    LANDING_ROUTE_ENV_VARS,
    SettingsError,
    parse_landing_url,
)

# Parallel downloads per local_files() call: enough to hide request latency, few enough to stay
# polite to a laptop's bandwidth and the bucket's request rate.
DOWNLOAD_THREADS = 4


class LandingKeyError(ValueError):
    """A key that is absolute or climbs out of the landing root (a path trick in a manifest)."""


class LandingAccessError(OSError):
    """The landing zone cannot be read: missing bucket, denied access, unreachable endpoint or no
    credentials. The message names the URL and the setting to fix, never a secret."""


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


def _redact(text: str) -> str:
    """Drop user info from any URL in ``text`` (an endpoint may carry it); keep the rest."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1", text)


def _endpoint_text(url: str | None, default: str) -> str:
    if not url:
        return default
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


class _BucketLandingZone(LandingZone):
    """What the S3 and GCS zones share: key ↔ object name, URLs, error translation, and local
    copies for the engine."""

    bucket: str
    prefix: str = ""

    scheme: ClassVar[str]
    # Exceptions of the provider SDK that _problem() turns into a LandingAccessError.
    sdk_errors: ClassVar[tuple[type[BaseException], ...]]

    def _object_name(self, key: str) -> str:
        key = safe_key(key)
        prefix = self.prefix.strip("/")
        return f"{prefix}/{key}" if prefix else key

    def _folder(self, prefix: str) -> str:
        """Object-name prefix of a folder key ('' for the whole zone). Folder semantics like the
        local zone: listing 'focus' never returns 'focus-old/...'."""
        base = self._object_name(prefix) if prefix else self.prefix.strip("/")
        return f"{base}/" if base else ""

    def _key_of(self, name: str) -> str:
        return name[len(self._folder("")) :]

    def url(self, key: str = "") -> str:
        path = self._object_name(key) if key else self.prefix.strip("/")
        return f"{self.scheme}://{self.bucket}/{path}" if path else f"{self.scheme}://{self.bucket}"

    @property
    @abstractmethod
    def _client(self) -> Any: ...

    @abstractmethod
    def _is_missing_object(self, error: BaseException) -> bool: ...

    @abstractmethod
    def _problem(self, error: BaseException, key: str) -> LandingAccessError: ...

    @abstractmethod
    def _probe_bucket(self) -> None:
        """One cheap listing call; raises when the bucket is missing or unreadable."""

    @abstractmethod
    def _download(self, key: str, path: Path) -> None: ...

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Turn SDK errors into a LandingAccessError naming the URL and the fix, and a missing
        object into FileNotFoundError. A missing bucket also answers 'not found' for every object
        in it, so a miss is told apart from a wrong bucket with one listing call."""
        try:
            yield
        except self.sdk_errors as error:
            if key and self._is_missing_object(error):
                raise self._missing(key) from None
            raise self._problem(error, key) from None

    def _missing(self, key: str) -> FileNotFoundError:
        """The error for an object that is not there, once the bucket itself is known to be."""
        try:
            self._probe_bucket()
        except self.sdk_errors as error:
            raise self._problem(error, key) from None
        return FileNotFoundError(f"{self.url(key)}: no such object")

    @contextlib.contextmanager
    def local_files(self, keys: Sequence[str]) -> Iterator[dict[str, str]]:
        """Download ``keys`` into a temporary folder that is deleted on exit. The keys are
        mirrored below it, so files keep their suffix (.parquet, .csv.gz) and hive-style folders
        (usage_date=...), and equal file names of different deliveries cannot collide."""
        with tempfile.TemporaryDirectory(prefix="finops-landing-") as folder:
            paths = {key: Path(folder, safe_key(key)) for key in keys}
            wanted = {path: key for key, path in paths.items()}
            for path in wanted:
                path.parent.mkdir(parents=True, exist_ok=True)
            if wanted:
                self._client  # noqa: B018 - build the shared client once, before the threads
                with ThreadPoolExecutor(
                    max_workers=min(DOWNLOAD_THREADS, len(wanted)),
                    thread_name_prefix="landing-download",
                ) as pool:
                    futures = [
                        pool.submit(self._download, key, path) for path, key in wanted.items()
                    ]
                    try:
                        for future in futures:
                            future.result()
                    except BaseException:
                        for future in futures:
                            future.cancel()
                        raise
            yield {key: str(path) for key, path in paths.items()}


class S3LandingZone(_BucketLandingZone):
    """A landing zone under ``s3://bucket/prefix``, read with boto3. Credentials come from the AWS
    SDK chain; a non-AWS endpoint (MinIO, LocalStack, moto) from AWS_ENDPOINT_URL."""

    s3: S3Resource

    scheme: ClassVar[str] = "s3"
    sdk_errors: ClassVar[tuple[type[BaseException], ...]] = (ClientError, BotoCoreError)

    @cached_property
    def _client(self) -> Any:
        # One client per resource instance (a run): boto3 clients are thread-safe, and building
        # one costs ~0.2 s.
        try:
            return self.s3.get_client()
        except (BotoCoreError, ValueError) as error:
            raise self._problem(error, "") from None

    def _endpoint(self) -> str:
        client = self.__dict__.get("_client")
        url = (
            client.meta.endpoint_url
            if client is not None
            else self.s3.endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        return _endpoint_text(url, "AWS S3")

    def _is_missing_object(self, error: BaseException) -> bool:
        return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in (
            "NoSuchKey",
            "404",
            "NotFound",
        )

    def _problem(self, error: BaseException, key: str) -> LandingAccessError:
        where = self.url(key)
        endpoint = self._endpoint()
        if isinstance(error, ClientError):
            details = error.response.get("Error", {})
            code = str(details.get("Code", "unknown"))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket" or (status == 404 and not key):
                return LandingAccessError(
                    f"{where}: bucket {self.bucket!r} does not exist at {endpoint}. Create it, or "
                    "fix the bucket in FINOPS_LANDING_URL (or FINOPS_LANDING_URL_<ROOT>); set "
                    "AWS_ENDPOINT_URL when the bucket lives on another S3-compatible server."
                )
            if status in (401, 403) or code in _S3_DENIED:
                return LandingAccessError(
                    f"{where}: access denied ({code}) at {endpoint}. The credentials found by the "
                    "AWS SDK chain (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an "
                    f"instance or task role) need s3:ListBucket on {self.bucket} and s3:GetObject "
                    "on its objects; refresh them if they expired."
                )
            message = _redact(str(details.get("Message", "")))
            return LandingAccessError(
                f"{where}: S3 request to {endpoint} failed ({code}, HTTP {status}): {message}"
            )
        name = type(error).__name__
        if isinstance(error, _S3_NO_CREDENTIALS):
            return LandingAccessError(
                f"{where}: no usable AWS credentials ({name}). Provide them the usual AWS way: "
                "AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an instance or "
                "task role."
            )
        if isinstance(error, _S3_UNREACHABLE):
            return LandingAccessError(
                f"{where}: cannot reach the S3 endpoint {endpoint} ({name}). Check AWS_ENDPOINT_URL "
                "(unset it for AWS itself; for MinIO, LocalStack or moto set it to the server's "
                "http(s)://host:port) and the network."
            )
        return LandingAccessError(
            f"{where}: S3 request to {endpoint} failed ({name}): {_redact(str(error))}. Check "
            "AWS_ENDPOINT_URL, AWS_DEFAULT_REGION and the credentials."
        )

    def _probe_bucket(self) -> None:
        self._client.list_objects_v2(Bucket=self.bucket, Prefix=self._folder(""), MaxKeys=1)

    def list(self, prefix: str = "") -> list[LandingObject]:
        objects = []
        with self._errors(""):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._folder(prefix)
            )
            for page in pages:
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/"):  # a console "folder" marker, not a file
                        continue
                    objects.append(
                        LandingObject(
                            key=self._key_of(item["Key"]),
                            size=item["Size"],
                            modified=item["LastModified"].astimezone(UTC),
                        )
                    )
        return sorted(objects, key=lambda o: o.key)

    def stat(self, key: str) -> LandingObject | None:
        name = self._object_name(key)
        try:
            with self._errors(key):
                head = self._client.head_object(Bucket=self.bucket, Key=name)
        except FileNotFoundError:
            return None
        return LandingObject(
            key=safe_key(key),
            size=head["ContentLength"],
            modified=head["LastModified"].astimezone(UTC),
        )

    def read_bytes(self, key: str) -> bytes:
        name = self._object_name(key)
        with self._errors(key):
            return self._client.get_object(Bucket=self.bucket, Key=name)["Body"].read()

    def _download(self, key: str, path: Path) -> None:
        name = self._object_name(key)
        with self._errors(key):
            # boto3's managed transfer: ranged, parallel GETs for large files.
            self._client.download_file(self.bucket, name, str(path))


_S3_DENIED = (
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
)
_S3_NO_CREDENTIALS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    TokenRetrievalError,
    ProfileNotFound,
)
_S3_UNREACHABLE = (BotoConnectionError, HTTPClientError)


class GCSLandingZone(_BucketLandingZone):
    """A landing zone under ``gs://bucket/prefix``, read with google-cloud-storage. Credentials
    come from Google application default credentials; with STORAGE_EMULATOR_HOST set the client
    talks to that emulator anonymously (no credentials or project needed)."""

    gcs: GCSResource
    # How long transient failures (refused connections, timeouts, 5xx) are retried before the
    # step fails; Google's default.
    retry_timeout_seconds: float = 120.0

    scheme: ClassVar[str] = "gs"
    sdk_errors: ClassVar[tuple[type[BaseException], ...]] = (
        GoogleAPIError,
        GoogleAuthError,
        requests.exceptions.RequestException,
    )

    @cached_property
    def _client(self) -> Any:
        try:
            return self.gcs.get_client()
        except (GoogleAuthError, ValueError) as error:
            raise self._problem(error, "") from None

    def _endpoint(self) -> str:
        client = self.__dict__.get("_client")
        url = client.api_endpoint if client is not None else os.environ.get("STORAGE_EMULATOR_HOST")
        return _endpoint_text(url, "Google Cloud Storage")

    @property
    def _retry(self) -> Any:
        return GCS_DEFAULT_RETRY.with_timeout(self.retry_timeout_seconds)

    def _is_missing_object(self, error: BaseException) -> bool:
        return isinstance(error, NotFound)

    def _problem(self, error: BaseException, key: str) -> LandingAccessError:
        where = self.url(key)
        endpoint = self._endpoint()
        name = type(error).__name__
        if isinstance(error, RetryError) and error.cause is not None:
            name = f"{name} after {type(error.cause).__name__}"
            error = error.cause
        if isinstance(error, NotFound):
            return LandingAccessError(
                f"{where}: bucket {self.bucket!r} does not exist at {endpoint}. Create it, or fix "
                "the bucket in FINOPS_LANDING_URL (or FINOPS_LANDING_URL_<ROOT>); set "
                "STORAGE_EMULATOR_HOST when the bucket lives in a GCS emulator."
            )
        if isinstance(error, Forbidden | Unauthorized | RefreshError):
            return LandingAccessError(
                f"{where}: access denied ({name}) at {endpoint}. The account found by Google "
                "application default credentials (GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth "
                "application-default login`, the attached service account) needs "
                f"storage.objects.list and storage.objects.get on {self.bucket} "
                "(roles/storage.objectViewer)."
            )
        if isinstance(error, DefaultCredentialsError):
            return LandingAccessError(
                f"{where}: no Google credentials found. Set GOOGLE_APPLICATION_CREDENTIALS to a "
                "service account key file, run `gcloud auth application-default login`, or run on "
                "a machine with an attached service account; for an emulator set "
                "STORAGE_EMULATOR_HOST."
            )
        if isinstance(error, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return LandingAccessError(
                f"{where}: cannot reach the GCS endpoint {endpoint} ({name}). Check "
                "STORAGE_EMULATOR_HOST (unset it for Google Cloud Storage itself; for an emulator "
                "set it to http://host:port) and the network."
            )
        code = getattr(error, "code", None)
        return LandingAccessError(
            f"{where}: GCS request to {endpoint} failed ({name}"
            + (f", HTTP {code}" if code else "")
            + "). Check STORAGE_EMULATOR_HOST and the credentials."
        )

    def _probe_bucket(self) -> None:
        list(
            self._client.list_blobs(
                self.bucket, prefix=self._folder("") or None, max_results=1, retry=self._retry
            )
        )

    def list(self, prefix: str = "") -> list[LandingObject]:
        with self._errors(""):
            blobs = [
                LandingObject(key=self._key_of(blob.name), size=blob.size, modified=blob.updated)
                for blob in self._client.list_blobs(
                    self.bucket, prefix=self._folder(prefix) or None, retry=self._retry
                )
                if not blob.name.endswith("/")  # a console "folder" placeholder, not a file
            ]
        return sorted(blobs, key=lambda o: o.key)

    def stat(self, key: str) -> LandingObject | None:
        name = self._object_name(key)
        with self._errors(key):
            blob = self._client.bucket(self.bucket).get_blob(name, retry=self._retry)
        if blob is None:
            self._missing(key)
            return None
        return LandingObject(key=safe_key(key), size=blob.size, modified=blob.updated)

    def read_bytes(self, key: str) -> bytes:
        name = self._object_name(key)
        with self._errors(key):
            return self._client.bucket(self.bucket).blob(name).download_as_bytes(retry=self._retry)

    def _download(self, key: str, path: Path) -> None:
        name = self._object_name(key)
        with self._errors(key):
            self._client.bucket(self.bucket).blob(name).download_to_filename(
                str(path), retry=self._retry
            )


class RoutedLandingZone(LandingZone):
    """Each export family read from its own landing zone, for teams that keep AWS exports in S3
    and GCP exports in GCS: a key goes to the zone routed for its first folder (``aws-cur``,
    ``aws-data-exports``, ``azure``, ``gcp``, ``focus``), anything else to the default zone.
    Every URL is a landing root that contains the ``<root>/`` folder."""

    default_url: str
    routes: dict[str, str]

    @cached_property
    def _zones(self) -> tuple[LandingZone, dict[str, LandingZone]]:
        routes = _checked_routes(self.routes)
        # Roots routed to the same URL share one zone (and one client).
        by_url: dict[str, LandingZone] = {}

        def zone(url: str, env_var: str) -> LandingZone:
            if url not in by_url:
                by_url[url] = landing_zone_from_url(url, env_var=env_var)
            return by_url[url]

        default = zone(self.default_url, "FINOPS_LANDING_URL")
        return default, {
            root: zone(url, LANDING_ROUTE_ENV_VARS[root]) for root, url in routes.items()
        }

    def _zone_of(self, key: str) -> LandingZone:
        default, routed = self._zones
        return routed.get(safe_key(key).split("/", 1)[0], default)

    def url(self, key: str = "") -> str:
        if key:
            return self._zone_of(key).url(key)
        default, routed = self._zones
        return "; ".join(
            [default.url(), *(f"{root}/ in {zone.url(root)}" for root, zone in routed.items())]
        )

    def list(self, prefix: str = "") -> list[LandingObject]:
        if prefix:
            return self._zone_of(prefix).list(prefix)
        default, routed = self._zones
        # A root that is routed elsewhere is invisible in the default zone, so list("") shows
        # exactly what list(<root>) shows for every root.
        objects = [o for o in default.list() if o.key.split("/", 1)[0] not in routed]
        for root, zone in routed.items():
            objects += zone.list(root)
        return sorted(objects, key=lambda o: o.key)

    def stat(self, key: str) -> LandingObject | None:
        return self._zone_of(key).stat(key)

    def read_bytes(self, key: str) -> bytes:
        return self._zone_of(key).read_bytes(key)

    @contextlib.contextmanager
    def local_files(self, keys: Sequence[str]) -> Iterator[dict[str, str]]:
        groups: dict[int, tuple[LandingZone, list[str]]] = {}
        for key in keys:
            zone = self._zone_of(key)
            groups.setdefault(id(zone), (zone, []))[1].append(key)
        with contextlib.ExitStack() as stack:
            paths: dict[str, str] = {}
            for zone, zone_keys in groups.values():
                paths.update(stack.enter_context(zone.local_files(zone_keys)))
            yield {key: paths[key] for key in keys}


def landing_zone_from_url(
    url: str,
    routes: Mapping[str, str] | None = None,
    *,
    env_var: str = "FINOPS_LANDING_URL",
) -> LandingZone:
    """The landing zone at ``url`` (a folder, s3://bucket/prefix or gs://bucket/prefix); with
    ``routes`` ({root: url}), a RoutedLandingZone that reads those roots from their own URLs.
    URLs are checked here, so a typo fails when the definitions load, naming the variable."""
    location = parse_landing_url(url, env_var)
    if routes:
        # Folders are made absolute now, like a single local zone, not when first read.
        return RoutedLandingZone(
            default_url=_absolute(url, env_var), routes=_checked_routes(routes)
        )
    if location.scheme == "s3":
        return S3LandingZone(bucket=location.bucket, prefix=location.path, s3=S3Resource())
    if location.scheme == "gs":
        return GCSLandingZone(bucket=location.bucket, prefix=location.path, gcs=GCSResource())
    return LocalLandingZone(root=str(Path(location.path).absolute()))


def _absolute(url: str, env_var: str) -> str:
    location = parse_landing_url(url, env_var)
    return str(Path(location.path).absolute()) if location.scheme == "file" else url


def _checked_routes(routes: Mapping[str, str]) -> dict[str, str]:
    """Routes with known roots and valid URLs (local folders made absolute)."""
    unknown = sorted(set(routes) - set(LANDING_ROOTS))
    if unknown:
        raise SettingsError(
            f"landing routes for unknown roots {unknown}; routable roots are "
            f"{list(LANDING_ROOTS)} (env vars {', '.join(LANDING_ROUTE_ENV_VARS.values())})"
        )
    return {root: _absolute(url, LANDING_ROUTE_ENV_VARS[root]) for root, url in routes.items()}
