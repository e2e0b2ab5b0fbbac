"""The serving zone in a bucket: ``FINOPS_SERVING_URL=s3://bucket/prefix`` or ``gs://bucket/prefix``.

On Kubernetes the warehouse and the local serving zone sit on the code location's volume, which
a BI tool in another pod cannot mount. With a serving URL every publish also brings the bucket in
line with the local serving zone:

* ``<prefix>/<schema>/<table>/<YYYY-MM>/<YYYY-MM-DD>.parquet`` and ``.../data.parquet``: the same
  files, same names. An object upload replaces an object whole (S3 and GCS both make a new
  version visible only when it is complete), so a reader gets a whole day, old or new.
* ``<prefix>/serving.duckdb``: the read-only snapshot, for ``ATTACH 's3://.../serving.duckdb'
  (READ_ONLY)`` with DuckDB's httpfs extension.

Which files to upload is decided against a record of what was last uploaded, kept beside the
local zone (``<serving>/.mirror.json``: per key its size and modification time), and against the
bucket's own listing, so an upload that failed (an outage, expired credentials) is made by the
next publish, and an object someone deleted comes back. Files the local zone no longer has (days
a table lost) are deleted from the bucket last, after the new files are in. Only objects this
module writes (Parquet files under the served schemas, the snapshot) are ever deleted.

Nothing here imports Dagster; credentials come from the SDK chains (AWS: environment, profile,
role; Google: application default credentials), endpoints from AWS_ENDPOINT_URL and
STORAGE_EMULATOR_HOST, as for the landing zone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from finops_assets.lib.serving import SERVED_SCHEMAS, snapshot_path
from finops_assets.settings import parse_serving_url

SERVING_URL_ENV = "FINOPS_SERVING_URL"
STATE_FILE = ".mirror.json"
SNAPSHOT_KEY = "serving.duckdb"
UPLOAD_THREADS = 4
_OWNED = re.compile(
    r"(?:" + "|".join(SERVED_SCHEMAS) + r")/[^/]+/(?:\d{4}-\d{2}/\d{4}-\d{2}-\d{2}|data)\.parquet"
)


class MirrorError(OSError):
    """The bucket cannot be written: the message names the URL, the object and what to fix."""


@dataclass(frozen=True)
class MirrorResult:
    url: str
    uploaded: int
    bytes_uploaded: int
    deleted: int
    unchanged: int


class Bucket(Protocol):
    url: str

    def list(self) -> set[str]:
        """Keys (relative to the prefix) of the objects under the prefix."""

    def upload(self, path: Path, key: str) -> None: ...

    def delete(self, keys: list[str]) -> None: ...


def _fix(url: str) -> str:
    return (
        f"Check {SERVING_URL_ENV}={url}: the bucket must exist and the pipeline's credentials "
        "(AWS: environment, profile or role; Google: application default credentials) must be "
        "allowed to list, write and delete under the prefix. The local serving zone is published; "
        "the next publish uploads what is missing."
    )


class S3Bucket:
    def __init__(self, bucket: str, prefix: str, client: Any | None = None) -> None:
        import boto3  # the AWS SDK: endpoint from AWS_ENDPOINT_URL, credentials from its chain

        self.bucket, self.prefix = bucket, prefix
        self.url = f"s3://{bucket}/{prefix}".rstrip("/")
        self.client = client or boto3.session.Session().client("s3")

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def list(self) -> set[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        keys = set()
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start
        ):
            keys.update(o["Key"][len(start) :] for o in page.get("Contents", []))
        return keys

    def upload(self, path: Path, key: str) -> None:
        # upload_file switches to a multipart upload for big files (the snapshot); the object
        # appears only when the upload completes.
        self.client.upload_file(str(path), self.bucket, self._name(key))

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            answer = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self._name(k)} for k in chunk], "Quiet": True},
            )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise MirrorError(
                    f"{self.url}: could not delete {first.get('Key')} ({first.get('Code')}: "
                    f"{first.get('Message')})"
                )


class GCSBucket:
    def __init__(self, bucket: str, prefix: str, client: Any | None = None) -> None:
        from google.cloud import storage  # STORAGE_EMULATOR_HOST: anonymous, to the emulator

        self.prefix = prefix
        self.url = f"gs://{bucket}/{prefix}".rstrip("/")
        self.client = client or storage.Client()
        self.bucket = self.client.bucket(bucket)

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def list(self) -> set[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        return {b.name[len(start) :] for b in self.client.list_blobs(self.bucket, prefix=start)}

    def upload(self, path: Path, key: str) -> None:
        self.bucket.blob(self._name(key)).upload_from_filename(str(path))

    def delete(self, keys: list[str]) -> None:
        from google.api_core.exceptions import NotFound

        for key in keys:
            with contextlib.suppress(NotFound):  # already gone is what we want
                self.bucket.blob(self._name(key)).delete()


def bucket_for(url: str) -> Bucket:
    location = parse_serving_url(url)
    if location.scheme == "s3":
        return S3Bucket(location.bucket, location.path)
    return GCSBucket(location.bucket, location.path)


def _sdk_errors() -> tuple[type[BaseException], ...]:
    from boto3.exceptions import Boto3Error  # S3UploadFailedError from upload_file
    from botocore.exceptions import BotoCoreError, ClientError
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError
    from requests.exceptions import RequestException

    return (
        Boto3Error,
        BotoCoreError,
        ClientError,
        GoogleAPIError,
        GoogleAuthError,
        RequestException,
    )


@contextlib.contextmanager
def _described(url: str, doing: str) -> Iterator[None]:
    try:
        yield
    except MirrorError:
        raise
    except _sdk_errors() as error:
        reason = re.sub(r"\s+", " ", str(error)).strip() or type(error).__name__
        raise MirrorError(f"{url}: could not {doing}: {reason}. {_fix(url)}") from None


def local_files(serving_dir: Path) -> dict[str, Path]:
    """Every published file of the local zone, by bucket key (temporary files, whose names do
    not end in .parquet, and anything else are not published names)."""
    files = {}
    for path in serving_dir.glob("*/*/**/*.parquet"):
        key = path.relative_to(serving_dir).as_posix()
        if _OWNED.fullmatch(key):
            files[key] = path
    snapshot = snapshot_path(serving_dir)
    if snapshot.exists():
        files[SNAPSHOT_KEY] = snapshot
    return files


def _signature(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _read_state(serving_dir: Path, url: str) -> dict[str, list[int]]:
    try:
        state = json.loads((serving_dir / STATE_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return state.get("uploaded", {}) if state.get("url") == url else {}


def _write_state(serving_dir: Path, url: str, uploaded: dict[str, list[int]]) -> None:
    target = serving_dir / STATE_FILE
    staging = target.with_name(target.name + ".partial")
    staging.write_text(json.dumps({"url": url, "uploaded": uploaded}, sort_keys=True))
    os.replace(staging, target)


def mirror(serving_dir: Path, bucket: Bucket) -> MirrorResult:
    """Bring ``bucket`` in line with the local serving zone ``serving_dir`` (already published):
    upload new and changed files (Parquet first, the snapshot after them), then delete the
    objects of files the zone no longer has."""
    url = bucket.url
    files = local_files(serving_dir)
    state = _read_state(serving_dir, url)
    with _described(url, "list the bucket"):
        remote = bucket.list()
    signatures = {key: _signature(path) for key, path in files.items()}
    wanted = sorted(
        (k for k in files if k not in remote or state.get(k) != signatures[k]),
        key=lambda k: (k == SNAPSHOT_KEY, k),  # the snapshot last, once its days' files are in
    )
    done = {k: v for k, v in state.items() if k in files and k in remote and k not in wanted}
    uploaded_bytes = 0
    try:
        parquet = [k for k in wanted if k != SNAPSHOT_KEY]

        def upload(key: str) -> str:
            with _described(url, f"upload {key}"):
                bucket.upload(files[key], key)
            return key

        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            for key in pool.map(upload, parquet):
                done[key] = signatures[key]
                uploaded_bytes += signatures[key][0]
        if SNAPSHOT_KEY in wanted:
            upload(SNAPSHOT_KEY)
            done[SNAPSHOT_KEY] = signatures[SNAPSHOT_KEY]
            uploaded_bytes += signatures[SNAPSHOT_KEY][0]
    finally:
        _write_state(serving_dir, url, done)
    stale = sorted(
        k for k in remote if k not in files and (_OWNED.fullmatch(k) or k == SNAPSHOT_KEY)
    )
    if stale:
        with _described(url, f"delete {len(stale)} object(s) no longer published"):
            bucket.delete(stale)
    return MirrorResult(url, len(wanted), uploaded_bytes, len(stale), len(files) - len(wanted))
