"""The landing zones (local folder, S3 through moto's server, GCS through fake-gcs-server) behave
the same through the LandingZone interface, refuse path tricks, and explain access problems."""

from collections.abc import Callable
from pathlib import Path

import pytest
from dagster_aws.s3 import S3Resource
from dagster_gcp import GCSResource

from finops_assets.resources.landing import (
    GCSLandingZone,
    LandingAccessError,
    LandingKeyError,
    LandingZone,
    LocalLandingZone,
    RoutedLandingZone,
    S3LandingZone,
    landing_zone_from_url,
    safe_key,
)
from finops_assets.settings import Settings, SettingsError
from finops_assets_tests.servers import (  # noqa: F401 - registers the pytest fixtures
    fake_gcs_endpoint_fixture,
    fake_gcs_fixture,
    moto_s3_endpoint_fixture,
    moto_s3_fixture,
    moto_s3_server,
    patched_environ,
    s3_test_environ,
    unique_bucket_name,
    upload_folder_to_gcs,
    upload_folder_to_s3,
)

# A small landing tree: two sources, a look-alike folder that must not match the 'focus' prefix.
TREE = {
    "focus/aws/d1/manifest.json": b'{"files": ["part-00000.csv.gz"]}',
    "focus/aws/d1/part-00000.csv.gz": b"\x1f\x8b not really gzip",
    "focus/gcp/d2/part-00000.parquet": b"PAR1....PAR1",
    "focus-old/notes.txt": b"old",
    "aws-cur/r/20250101-20250201/r-Manifest.json": b"{}",
}
PREFIX = "exports/billing"


def write_tree(folder: Path, tree: dict[str, bytes]) -> Path:
    for key, content in tree.items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(content)
    return folder


MakeZone = Callable[[dict[str, bytes]], LandingZone]


@pytest.fixture(params=["local", "s3", "gcs"])
def zone_kind(request) -> str:
    return request.param


@pytest.fixture
def make_zone(request, zone_kind, tmp_path) -> MakeZone:
    """Puts a tree under PREFIX of a fresh folder or bucket (beside an object outside the prefix
    that the zone must never see) and returns the zone reading it, built from its URL."""
    kind = zone_kind
    outside = write_tree(tmp_path / "outside", {"secret.txt": b"not yours"})

    def make(tree: dict[str, bytes]) -> LandingZone:
        source = write_tree(tmp_path / "tree", tree)
        if kind == "local":
            store = tmp_path / "store"
            write_tree(store / PREFIX, tree)
            write_tree(store, {"secret.txt": b"not yours"})
            return landing_zone_from_url(str(store / PREFIX))
        bucket = unique_bucket_name()
        if kind == "s3":
            endpoint = request.getfixturevalue("moto_s3")
            upload_folder_to_s3(endpoint, outside, bucket)
            upload_folder_to_s3(endpoint, source, bucket, PREFIX)
            return landing_zone_from_url(f"s3://{bucket}/{PREFIX}")
        host = request.getfixturevalue("fake_gcs")
        upload_folder_to_gcs(host, outside, bucket)
        upload_folder_to_gcs(host, source, bucket, PREFIX)
        return landing_zone_from_url(f"gs://{bucket}/{PREFIX}/")

    return make


@pytest.mark.parametrize("key", ["../secret", "a/../../b", "/etc/passwd", "a\\..\\b", "", "C:/x"])
def test_keys_cannot_escape_the_root(key):
    with pytest.raises(LandingKeyError):
        safe_key(key)


def test_key_normalization_inside_root():
    assert safe_key("a/./b//c") == "a/b/c"
    assert safe_key("x.parquet", base="focus/d1") == "focus/d1/x.parquet"
    with pytest.raises(LandingKeyError, match="escapes its delivery folder"):
        safe_key("../d2/x.parquet", base="focus/d1")


def test_zone_lists_stats_and_reads(make_zone, zone_kind):
    zone = make_zone(TREE)
    kind = zone_kind
    assert (
        type(zone) is {"local": LocalLandingZone, "s3": S3LandingZone, "gcs": GCSLandingZone}[kind]
    )
    # Everything under the prefix, sorted, relative to it; nothing from outside the prefix.
    assert [o.key for o in zone.list()] == sorted(TREE)
    assert [o.key for o in zone.list("focus")] == [
        "focus/aws/d1/manifest.json",
        "focus/aws/d1/part-00000.csv.gz",
        "focus/gcp/d2/part-00000.parquet",
    ]
    assert [o.key for o in zone.list("focus/aws")] == [
        "focus/aws/d1/manifest.json",
        "focus/aws/d1/part-00000.csv.gz",
    ]
    assert zone.list("azure") == []
    stat = zone.stat("focus/gcp/d2/part-00000.parquet")
    assert (stat.key, stat.size) == ("focus/gcp/d2/part-00000.parquet", 12)
    assert stat.modified.utcoffset().total_seconds() == 0
    assert {o.key: o.size for o in zone.list("focus-old")} == {"focus-old/notes.txt": 3}
    assert zone.read_bytes("focus/aws/d1/manifest.json") == TREE["focus/aws/d1/manifest.json"]
    expected_url = {
        "local": f"/store/{PREFIX}/focus/aws/d1/manifest.json",
        "s3": f"/{PREFIX}/focus/aws/d1/manifest.json",
        "gcs": f"/{PREFIX}/focus/aws/d1/manifest.json",
    }[kind]
    assert zone.url("focus/aws/d1/manifest.json").endswith(expected_url)
    assert zone.url("focus/x").startswith({"local": "/", "s3": "s3://", "gcs": "gs://"}[kind])


def test_local_files_keep_names_and_are_removed_after_use(make_zone, zone_kind):
    zone = make_zone(TREE)
    keys = ["focus/aws/d1/part-00000.csv.gz", "focus/gcp/d2/part-00000.parquet"]
    with zone.local_files(keys) as paths:
        assert sorted(paths) == keys
        for key in keys:
            path = Path(paths[key])
            # DuckDB picks its reader from the suffix; the folders keep hive keys readable.
            assert path.as_posix().endswith(key)
            assert path.read_bytes() == TREE[key]
    if zone_kind != "local":
        assert not any(Path(p).exists() for p in paths.values())


def test_missing_keys(make_zone, zone_kind):
    zone = make_zone(TREE)
    assert zone.stat("focus/aws/d1/part-00001.csv.gz") is None
    assert zone.stat("azure/none/manifest.json") is None
    with pytest.raises(FileNotFoundError, match=r"focus/aws/d1/part-00001\.csv\.gz"):
        zone.read_bytes("focus/aws/d1/part-00001.csv.gz")
    if zone_kind != "local":  # the local zone hands out paths; the reader fails later
        with (
            pytest.raises(FileNotFoundError, match=r"focus/gcp/d2/gone\.parquet"),
            zone.local_files(["focus/aws/d1/manifest.json", "focus/gcp/d2/gone.parquet"]),
        ):
            pass


@pytest.mark.parametrize("key", ["../secret.txt", "focus/../../secret.txt", "/secret.txt", "a\\b"])
def test_path_tricks_are_refused(make_zone, key):
    zone = make_zone(TREE)
    with pytest.raises(LandingKeyError):
        zone.read_bytes(key)
    with pytest.raises(LandingKeyError):
        zone.stat(key)
    with pytest.raises(LandingKeyError), zone.local_files([key]):
        pass
    with pytest.raises(LandingKeyError):
        zone.list(key)


def test_symlink_out_of_the_root_is_refused(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    root = tmp_path / "landing"
    root.mkdir()
    (root / "link.txt").symlink_to(outside)
    with pytest.raises(LandingKeyError, match="outside the landing root"):
        LocalLandingZone(root=str(root)).read_bytes("link.txt")


def test_routed_zone_reads_each_root_from_its_own_zone(moto_s3, fake_gcs, tmp_path):
    s3_bucket, gcs_bucket = unique_bucket_name(), unique_bucket_name()
    aws = write_tree(tmp_path / "aws", {"aws-cur/r/m.json": b"s3", "aws-cur/r/a/p.csv.gz": b"1"})
    gcp = write_tree(tmp_path / "gcp", {"gcp/acct/usage_date=2025-01-01/e.parquet": b"gcs"})
    upload_folder_to_s3(moto_s3, aws, s3_bucket, "aws")
    upload_folder_to_gcs(fake_gcs, gcp, gcs_bucket)
    # The default folder also holds a stale aws-cur copy: routed roots are never read from it.
    local = write_tree(
        tmp_path / "local",
        {"focus/p/d/part.csv": b"local", "aws-cur/r/m.json": b"stale", "gcp/x.parquet": b"stale"},
    )
    zone = landing_zone_from_url(
        str(local), {"aws-cur": f"s3://{s3_bucket}/aws", "gcp": f"gs://{gcs_bucket}"}
    )
    assert isinstance(zone, RoutedLandingZone)
    assert [o.key for o in zone.list()] == [
        "aws-cur/r/a/p.csv.gz",
        "aws-cur/r/m.json",
        "focus/p/d/part.csv",
        "gcp/acct/usage_date=2025-01-01/e.parquet",
    ]
    assert [o.key for o in zone.list("aws-cur")] == ["aws-cur/r/a/p.csv.gz", "aws-cur/r/m.json"]
    assert zone.read_bytes("aws-cur/r/m.json") == b"s3"
    assert zone.stat("gcp/acct/usage_date=2025-01-01/e.parquet").size == 3
    assert zone.stat("gcp/x.parquet") is None
    assert zone.url("aws-cur/r/m.json") == f"s3://{s3_bucket}/aws/aws-cur/r/m.json"
    assert zone.url("gcp/x") == f"gs://{gcs_bucket}/gcp/x"
    assert zone.url("focus/p") == str(local / "focus" / "p")
    keys = ["focus/p/d/part.csv", "aws-cur/r/m.json", "gcp/acct/usage_date=2025-01-01/e.parquet"]
    with zone.local_files(keys) as paths:
        assert list(paths) == keys
        assert [Path(paths[k]).read_bytes() for k in keys] == [b"local", b"s3", b"gcs"]
    with pytest.raises(LandingKeyError):
        zone.read_bytes("../aws-cur/r/m.json")


def test_missing_bucket_is_explained(moto_s3, fake_gcs):
    for url, fix in [
        ("s3://no-such-landing/exports", "AWS_ENDPOINT_URL"),
        ("gs://no-such-landing/exports", "STORAGE_EMULATOR_HOST"),
    ]:
        zone = landing_zone_from_url(url)
        for method, key in [(zone.list, "focus"), (zone.stat, "focus/a.csv")]:
            with pytest.raises(LandingAccessError) as error:
                method(key)
            message = str(error.value)
            assert message.startswith(url)
            assert "bucket 'no-such-landing' does not exist" in message
            assert "FINOPS_LANDING_URL" in message and fix in message
            assert error.value.__cause__ is None and error.value.__suppress_context__


def test_unreachable_endpoints_are_explained(monkeypatch):
    # Port 9 (discard) on 127.0.0.1 refuses connections; one attempt / one second of retries.
    for name, value in s3_test_environ("http://127.0.0.1:9").items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    s3 = S3LandingZone(bucket="landing", s3=S3Resource(max_attempts=1))
    with pytest.raises(
        LandingAccessError, match=r"cannot reach the S3 endpoint http://127\.0\.0\.1:9"
    ):
        s3.list()
    gcs = GCSLandingZone(bucket="landing", gcs=GCSResource(), retry_timeout_seconds=1)
    with pytest.raises(LandingAccessError, match="STORAGE_EMULATOR_HOST") as error:
        gcs.read_bytes("focus/a.csv")
    assert str(error.value).startswith("gs://landing/focus/a.csv: cannot reach the GCS endpoint")


def test_denied_access_is_explained_without_the_secret():
    secret = "wJalrXUtnFEMI-not-a-real-secret-42"
    with (
        moto_s3_server(enforce_auth=True) as endpoint,
        patched_environ({**s3_test_environ(endpoint), "AWS_SECRET_ACCESS_KEY": secret}),
    ):
        zone = landing_zone_from_url("s3://billing-landing/prod")
        with pytest.raises(LandingAccessError) as error:
            zone.list("aws-cur")
    message = str(error.value)
    assert message.startswith("s3://billing-landing/prod: access denied (InvalidAccessKeyId)")
    assert "s3:ListBucket" in message
    assert secret not in message and "testing" not in message


def test_urls_are_checked_and_routed():
    s3 = landing_zone_from_url("s3://billing-landing/prod/")
    assert (type(s3), s3.bucket, s3.prefix) == (S3LandingZone, "billing-landing", "prod")
    gcs = landing_zone_from_url("gs://billing-landing")
    assert (type(gcs), gcs.bucket, gcs.prefix) == (GCSLandingZone, "billing-landing", "")
    assert type(landing_zone_from_url("data/landing", {})) is LocalLandingZone
    with pytest.raises(ValueError, match="ftp://x"):
        landing_zone_from_url("ftp://x")
    with pytest.raises(ValueError, match=r"FINOPS_LANDING_URL='s3://Bad_Bucket'.*s3://bucket"):
        landing_zone_from_url("s3://Bad_Bucket")
    with pytest.raises(ValueError, match=r"FINOPS_LANDING_URL_GCP='gs:/x'.*gs://bucket\[/prefix\]"):
        landing_zone_from_url("data/landing", {"gcp": "gs:/x"})
    with pytest.raises(ValueError, match=r"unknown roots \['aws'\]"):
        landing_zone_from_url("data/landing", {"aws": "s3://billing-landing"})


def test_settings_read_the_routes_and_name_the_bad_variable():
    settings = Settings.from_env(
        {
            "FINOPS_LANDING_URL": "data/landing",
            "FINOPS_LANDING_URL_AWS_CUR": "s3://billing-landing/aws",
            "FINOPS_LANDING_URL_AWS_DATA_EXPORTS": "s3://billing-landing/aws",
            "FINOPS_LANDING_URL_GCP": "gs://billing-export",
            "FINOPS_LANDING_URL_AZURE": "",
        }
    )
    assert settings.landing_routes == (
        ("aws-cur", "s3://billing-landing/aws"),
        ("aws-data-exports", "s3://billing-landing/aws"),
        ("gcp", "gs://billing-export"),
    )
    assert Settings.from_env({}).landing_routes == ()
    with pytest.raises(SettingsError, match=r"^FINOPS_LANDING_URL_FOCUS='s3:bucket': .*gs://"):
        Settings.from_env({"FINOPS_LANDING_URL_FOCUS": "s3:bucket"})
    with pytest.raises(SettingsError, match=r"^FINOPS_LANDING_URL='http://x': http:// is not"):
        Settings.from_env({"FINOPS_LANDING_URL": "http://x"})
