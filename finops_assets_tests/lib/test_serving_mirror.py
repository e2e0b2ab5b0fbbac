"""The serving zone copied to a bucket (FINOPS_SERVING_URL) on a real moto S3 server and a real
fake-gcs-server: the objects are the local files byte for byte, an unchanged publish uploads
nothing, a changed day uploads that day and the snapshot, a removed day is deleted, objects this
platform did not write stay, and an upload that failed is made by the next publish."""

import io
import json
from datetime import date
from decimal import Decimal

import boto3
import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from finops_assets.cli import main as finops_cli
from finops_assets.definitions import build_defs
from finops_assets.defs.serving.sensors import PUBLISH_JOB
from finops_assets.lib import publishing, serving, serving_mirror
from finops_assets.settings import Settings, SettingsError
from finops_assets_tests.lib.test_serving import warehouse
from finops_assets_tests.servers import (  # noqa: F401 - registers the pytest fixtures
    fake_gcs_endpoint_fixture,
    fake_gcs_fixture,
    gcs_client,
    moto_s3_endpoint_fixture,
    moto_s3_fixture,
    moto_s3_server,
    s3_client,
    s3_test_environ,
    unique_bucket_name,
)

DAY_FILES = [
    "core/cost_facts/2025-01/2025-01-30.parquet",
    "core/cost_facts/2025-01/2025-01-31.parquet",
    "core/cost_facts/2025-02/2025-02-01.parquet",
    "finance/invoices/data.parquet",
]


class S3View:
    def __init__(self, endpoint: str, bucket: str, prefix: str) -> None:
        self.client, self.bucket, self.prefix = s3_client(endpoint), bucket, prefix
        self.client.create_bucket(Bucket=bucket)

    def objects(self) -> list[str]:
        answer = self.client.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}/")
        return sorted(o["Key"][len(self.prefix) + 1 :] for o in answer.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")["Body"].read()

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=body)

    def remove(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")


class GCSView:
    def __init__(self, host: str, bucket: str, prefix: str) -> None:
        self.client, self.prefix = gcs_client(host), prefix
        self.bucket = self.client.create_bucket(bucket)

    def objects(self) -> list[str]:
        blobs = self.client.list_blobs(self.bucket, prefix=f"{self.prefix}/")
        return sorted(b.name[len(self.prefix) + 1 :] for b in blobs)

    def read(self, key: str) -> bytes:
        return self.bucket.blob(f"{self.prefix}/{key}").download_as_bytes()

    def put(self, key: str, body: bytes) -> None:
        self.bucket.blob(f"{self.prefix}/{key}").upload_from_string(body)

    def remove(self, key: str) -> None:
        self.bucket.blob(f"{self.prefix}/{key}").delete()


@pytest.fixture(params=["s3", "gs"])
def bucket(request):
    """(serving URL, a view of the bucket through the SDK, independent of the code under test)."""
    name = unique_bucket_name("serving")
    if request.param == "s3":
        view = S3View(request.getfixturevalue("moto_s3"), name, "finops/serving")
    else:
        view = GCSView(request.getfixturevalue("fake_gcs"), name, "finops/serving")
    return f"{request.param}://{name}/finops/serving", view


def publish(con, root, url, days=None):
    return publishing.publish_all(con, root, days=days, serving_url=url)


def test_the_bucket_holds_the_local_zone_and_follows_its_changes(tmp_path, bucket):
    url, view = bucket
    con = warehouse(tmp_path / "warehouse.duckdb")
    root = tmp_path / "serving"
    view.put("notes/README.txt", b"kept: not written by finops_assets")

    first = publish(con, root, url).mirrored
    assert first.url == url and first.uploaded == 5 and first.deleted == 0
    assert view.objects() == sorted([*DAY_FILES, "notes/README.txt", "serving.duckdb"])
    for key in DAY_FILES:
        assert view.read(key) == (root / key).read_bytes()
    day = pq.read_table(io.BytesIO(view.read(DAY_FILES[0])))
    assert day.num_rows == 2 and day.column("charge_date").type == "date32[day]"
    snapshot = tmp_path / "downloaded.duckdb"
    snapshot.write_bytes(view.read("serving.duckdb"))
    with duckdb.connect(str(snapshot), read_only=True) as reader:
        assert reader.execute(
            "SELECT BillingCurrency, sum(BilledCost) FROM core.cost_facts GROUP BY 1 ORDER BY 1"
        ).fetchall() == [("EUR", Decimal("2.5")), ("USD", Decimal("11.26"))]

    # Nothing published since: nothing to upload.
    again = serving_mirror.mirror(root, serving_mirror.bucket_for(url))
    assert (again.uploaded, again.deleted, again.unchanged) == (0, 0, 5)

    # One day restated: that day's file, the snapshot and the whole-table files (every publish
    # rewrites those) go up; the other days' files stay.
    con.execute("UPDATE core.cost_facts SET BilledCost = 20 WHERE charge_date = '2025-01-31'")
    changed = publish(con, root, url, days=[date(2025, 1, 31)]).mirrored
    assert (changed.uploaded, changed.deleted, changed.unchanged) == (3, 0, 2)
    assert pq.read_table(io.BytesIO(view.read(DAY_FILES[1]))).column("BilledCost").to_pylist() == [
        Decimal("20.000000000000")
    ]

    # A day the warehouse no longer has is deleted from the bucket; the stranger's object stays.
    con.execute("DELETE FROM core.cost_facts WHERE charge_date = '2025-02-01'")
    removed = publish(con, root, url, days=[date(2025, 2, 1)]).mirrored
    assert removed.deleted == 1
    assert DAY_FILES[2] not in view.objects() and "notes/README.txt" in view.objects()
    assert not list(root.glob(".mirror.json.partial"))


def test_an_object_lost_from_the_bucket_is_uploaded_again(tmp_path, bucket):
    url, view = bucket
    con = warehouse(tmp_path / "warehouse.duckdb")
    root = tmp_path / "serving"
    publish(con, root, url)
    view.remove(DAY_FILES[1])
    healed = serving_mirror.mirror(root, serving_mirror.bucket_for(url))
    assert healed.uploaded == 1
    assert view.read(DAY_FILES[1]) == (root / DAY_FILES[1]).read_bytes()


def test_a_failed_upload_keeps_the_local_zone_and_the_next_publish_catches_up(tmp_path, moto_s3):
    name = unique_bucket_name("serving")
    url = f"s3://{name}/serving"
    con = warehouse(tmp_path / "warehouse.duckdb")
    root = tmp_path / "serving"
    with pytest.raises(publishing.TargetError) as failed:
        publish(con, root, url)
    message = str(failed.value)
    assert url in message and "FINOPS_SERVING_URL" in message and "NoSuchBucket" in message
    # The local zone was published before the bucket was tried.
    assert [t.table for t in failed.value.summary.tables] == ["core.cost_facts", "finance.invoices"]
    assert (root / DAY_FILES[0]).exists() and serving.snapshot_path(root).exists()

    view = S3View(moto_s3, name, "serving")  # the bucket now exists
    caught_up = serving_mirror.mirror(root, serving_mirror.bucket_for(url))
    assert caught_up.uploaded == 5
    assert view.objects() == sorted([*DAY_FILES, "serving.duckdb"])


def test_the_cli_publishes_to_the_bucket_and_says_when_it_cannot(
    tmp_path, moto_s3, monkeypatch, capsys
):
    name = unique_bucket_name("serving")
    warehouse(tmp_path / "warehouse.duckdb").close()
    monkeypatch.setenv("FINOPS_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("FINOPS_SERVING_URL", f"s3://{name}/zone")
    assert finops_cli(["publish"]) == 1
    err = capsys.readouterr().err
    assert f"s3://{name}/zone" in err and "the next publish uploads what is missing" in err

    view = S3View(moto_s3, name, "zone")
    assert finops_cli(["publish"]) == 0
    out = capsys.readouterr().out
    assert f"s3://{name}/zone: 5 object(s) uploaded" in out
    assert view.objects() == sorted([*DAY_FILES, "serving.duckdb"])


def test_a_serving_url_must_name_a_bucket():
    with pytest.raises(SettingsError, match=r"FINOPS_SERVING_URL='data/serving'.*s3://bucket"):
        Settings.from_env({"FINOPS_SERVING_URL": "data/serving"})
    with pytest.raises(
        SettingsError,
        match=r"'No_Such' is not a valid bucket name.*; use s3://bucket\[/prefix\] or gs://",
    ):
        Settings.from_env({"FINOPS_SERVING_URL": "s3://No_Such/x"})
    assert Settings.from_env({"FINOPS_SERVING_URL": "gs://b-1/p"}).serving_url == "gs://b-1/p"


def test_the_daemons_publish_op_mirrors_and_fails_naming_the_bucket(tmp_path, moto_s3):
    name = unique_bucket_name("serving")
    warehouse(tmp_path / "warehouse.duckdb").close()
    settings = Settings(
        landing_url=str(tmp_path / "landing"),
        warehouse=str(tmp_path / "warehouse.duckdb"),
        start_date="2025-01-01",
        serving_url=f"s3://{name}/zone",
    )
    job = build_defs(settings).resolve_job_def(PUBLISH_JOB)
    with dg.DagsterInstance.ephemeral() as instance:
        failed = job.execute_in_process(instance=instance, raise_on_error=False)
        assert not failed.success
        (failure,) = [e for e in failed.all_events if e.is_step_failure]
        message = failure.step_failure_data.error.message
        assert f"s3://{name}/zone" in message and "local serving zone" in message
        assert (tmp_path / "serving" / DAY_FILES[0]).exists()

        view = S3View(moto_s3, name, "zone")
        done = job.execute_in_process(instance=instance)
        (metadata,) = [
            e.event_specific_data.metadata for e in done.all_events if e.is_successful_output
        ]
        assert metadata["serving_url"].value == f"s3://{name}/zone"
        assert metadata["objects_uploaded"].value == 5
        assert view.objects() == sorted([*DAY_FILES, "serving.duckdb"])


def test_an_upload_the_bucket_refuses_names_the_object_and_the_fix(tmp_path, monkeypatch):
    """A real refusal: moto enforcing IAM, credentials allowed to list the bucket, not to write."""
    name = unique_bucket_name("serving")
    with moto_s3_server(enforce_auth=True, setup_actions=4) as endpoint:
        s3_client(endpoint).create_bucket(Bucket=name)
        iam = boto3.session.Session().client(
            "iam",
            endpoint_url=endpoint,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
            region_name="us-east-1",
        )
        iam.create_user(UserName="reader")
        iam.put_user_policy(
            UserName="reader",
            PolicyName="list-only",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
                }
            ),
        )
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        for variable, value in s3_test_environ(endpoint).items():
            if value is None:
                monkeypatch.delenv(variable, raising=False)
            else:
                monkeypatch.setenv(variable, value)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        con = warehouse(tmp_path / "warehouse.duckdb")
        root = tmp_path / "serving"
        with pytest.raises(publishing.TargetError) as failed:
            publish(con, root, f"s3://{name}/zone")
    message = str(failed.value)
    assert f"s3://{name}/zone: could not upload core/cost_facts/" in message
    assert "AccessDenied" in message and "FINOPS_SERVING_URL" in message
    assert "the next publish uploads what is missing" in message
    assert key["SecretAccessKey"] not in message
    assert (root / DAY_FILES[0]).exists()
    assert json.loads((root / serving_mirror.STATE_FILE).read_text())["uploaded"] == {}
