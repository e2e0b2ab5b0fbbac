"""alerts_sensor end to end: real failed runs and checks in a real instance, delivered to a real
HTTP receiver and a real SMTP server on 127.0.0.1, each exactly once."""

import socket
from email import message_from_bytes
from email.policy import default as default_policy

import dagster as dg
import pytest
import yaml
from aiosmtpd.controller import Controller

from finops_assets.definitions import build_defs
from finops_assets.defs.alerts.sensors import alerts_sensor
from finops_assets.lib.alerts import DeliveryCursor
from finops_assets.lib.rules import default_rules_path
from finops_assets.resources.rules import RulesResource
from finops_assets.settings import Settings
from finops_assets_tests.lib.test_alerts import SECRET_PATH, WebhookReceiver

SLACK_PATH = "/slack/T0000/B0000/an0therS3cretT0ken"
SMTP_PASSWORD = "hunter2-smtp-password"
UI = "http://dagster.example.com"

daily = dg.DailyPartitionsDefinition(start_date="2025-01-01")


@dg.asset(key=["demo", "costs"], partitions_def=daily)
def costs() -> int:
    return 1


@dg.asset_check(asset=costs, name="contract", partitions_def=daily)
def contract() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description="3 contract violation(s) in 1500 rows of demo.costs",
        metadata={"violations": 3, "details": dg.MetadataValue.md("| a |\n|---|")},
    )


@dg.asset_check(asset=costs, name="untagged_share", partitions_def=daily)
def untagged_share() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN)


@dg.asset_check(asset=costs, name="row_count", partitions_def=daily)
def row_count() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.asset(key=["demo", "broken"], partitions_def=daily)
def broken() -> int:
    raise ValueError("unreadable file landing/aws/part-0.parquet")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self):
        self.messages = []
        self.port = free_port()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"


@pytest.fixture
def webhook():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def rules_file(tmp_path, webhook, mailbox, monkeypatch):
    """Write a rules file whose alerts: section is ``alerts`` plus the default targets."""
    monkeypatch.setenv("TEST_JSON_WEBHOOK_URL", webhook.url())
    monkeypatch.setenv("TEST_SLACK_WEBHOOK_URL", webhook.url(SLACK_PATH))
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)

    def write(**alerts) -> str:
        rules = yaml.safe_load(default_rules_path().read_text())
        rules["alerts"] = {
            "ui_base_url": UI,
            "webhooks": [{"name": "json-hook", "url_env": "TEST_JSON_WEBHOOK_URL"}],
            "email": [
                {
                    "name": "oncall",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": mailbox.port,
                    "starttls": False,
                    "sender": "dagster@example.com",
                    "recipients": ["finops-oncall@example.com"],
                }
            ],
            **alerts,
        }
        path = tmp_path / "rules.yaml"
        path.write_text(yaml.safe_dump(rules))
        return str(path)

    return write


def tick(instance, rules_path: str, cursor: str | None) -> tuple[str, str]:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"rules": RulesResource(path=rules_path)}
    )
    result = alerts_sensor(context)
    if isinstance(result, dg.SensorResult):  # it sent something: the counts are observed
        (observation,) = result.asset_events
        assert observation.asset_key == dg.AssetKey(["ops", "pipeline_health"])
        meta = observation.metadata
        assert meta["alerts_attempted"].value >= meta["alerts_delivered"].value
        return result.skip_reason.skip_message, context.cursor
    assert isinstance(result, dg.SkipReason)
    return result.skip_message, context.cursor


def fail_a_check_and_a_run(instance) -> None:
    checked = dg.materialize(
        [costs, contract, untagged_share, row_count],
        instance=instance,
        partition_key="2025-01-05",
    )
    assert checked.success  # non-blocking checks: the run succeeds, the checks fail
    failed = dg.materialize(
        [broken], instance=instance, partition_key="2025-01-06", raise_on_error=False
    )
    assert not failed.success


def test_each_failure_is_delivered_once(instance, rules_file, webhook, mailbox):
    slack = {"name": "slack", "url_env": "TEST_SLACK_WEBHOOK_URL", "format": "slack"}
    json_hook = {"name": "json-hook", "url_env": "TEST_JSON_WEBHOOK_URL"}
    path = rules_file(webhooks=[json_hook, slack], min_severity="error")
    messages = mailbox.messages

    reason, cursor = tick(instance, path, None)
    assert reason.startswith("First tick: alerting starts after event storage id")
    fail_a_check_and_a_run(instance)

    reason, cursor = tick(instance, path, cursor)
    # the ERROR check and the run; the WARN check is below min_severity, row_count passed
    assert reason == "2 alert(s): 6 delivered, 0 delivery error(s)."
    check_alert, run_alert = webhook.bodies()
    assert check_alert["kind"] == "check_failed"
    assert check_alert["asset_key"] == "demo/costs"
    assert check_alert["check_name"] == "contract"
    assert check_alert["partition"] == "2025-01-05"
    assert check_alert["severity"] == "error"
    assert check_alert["metadata"] == {"violations": "3"}
    assert check_alert["text"].startswith("3 contract violation(s) in 1500 rows of demo.costs")
    assert check_alert["link"] == f"{UI}/assets/demo/costs?view=checks&checkDetail=contract"
    assert run_alert["kind"] == "run_failed"
    assert run_alert["title"] == "Run failed: demo/broken [2025-01-06]"
    assert run_alert["job_name"] == "__ephemeral_asset_job__"  # named by its asset in the title
    assert run_alert["partition"] == "2025-01-06"
    assert (
        "demo__broken: ValueError: unreadable file landing/aws/part-0.parquet"
        in (run_alert["text"])
    )
    assert run_alert["link"] == f"{UI}/runs/{run_alert['run_id']}"
    assert instance.get_run_by_id(run_alert["run_id"]).is_failure

    slack_check, slack_run = webhook.bodies(SLACK_PATH)
    assert slack_check["text"].startswith(":red_circle: Check failed: demo/costs contract")
    assert [b["type"] for b in slack_check["blocks"]] == ["header", "section", "section", "section"]
    assert slack_run["blocks"][0]["text"]["text"] == "Run failed: demo/broken [2025-01-06]"

    assert [m["Subject"] for m in messages] == [
        "[Dagster ERROR] Check failed: demo/costs contract [2025-01-05]",
        "[Dagster ERROR] Run failed: demo/broken [2025-01-06]",
    ]
    assert messages[0]["To"] == "finops-oncall@example.com"
    assert "violations: 3" in messages[0].get_content()

    reason, cursor = tick(instance, path, cursor)
    assert reason == "Nothing to deliver: no new failed asset checks or failed runs."
    assert (len(webhook.bodies()), len(webhook.bodies(SLACK_PATH)), len(messages)) == (2, 2, 2)
    assert DeliveryCursor.parse(cursor).pending == {}


def test_failures_just_before_the_first_tick_are_still_sent(instance, rules_file, webhook):
    # The daemon may run a load (and fail its checks) before it first evaluates this sensor.
    path = rules_file(email=[], min_severity="error")
    fail_a_check_and_a_run(instance)
    reason, cursor = tick(instance, path, None)
    assert "the 60 minutes before it are sent from the next tick" in reason
    reason, cursor = tick(instance, path, cursor)
    assert reason == "2 alert(s): 2 delivered, 0 delivery error(s)."
    assert sorted(b["kind"] for b in webhook.bodies()) == ["check_failed", "run_failed"]


def test_older_history_is_not_replayed(instance, rules_file, webhook):
    path = rules_file(email=[], replay_minutes=0)
    fail_a_check_and_a_run(instance)
    reason, cursor = tick(instance, path, None)
    ceiling = instance.event_log_storage.get_maximum_record_id()
    assert reason.startswith(f"First tick: alerting starts after event storage id {ceiling};")
    assert "none was recorded in the 0 minutes before it" in reason
    reason, cursor = tick(instance, path, cursor)
    assert reason == "Nothing to deliver: no new failed asset checks or failed runs."
    assert webhook.requests == []


def test_a_target_that_is_down_is_retried_without_duplicates(
    instance, rules_file, webhook, mailbox, capfd
):
    path = rules_file(include_run_failures=False)
    messages = mailbox.messages
    _, cursor = tick(instance, path, None)
    fail_a_check_and_a_run(instance)
    webhook.stop()

    capfd.readouterr()
    reason, cursor = tick(instance, path, cursor)
    logs = capfd.readouterr().err  # the sensor's context.log goes to the console
    # contract (ERROR) and untagged_share (WARN): email takes both, the webhook neither
    assert (
        reason
        == "2 alert(s): 2 delivered, 1 delivery error(s); 2 held for retry (failing: json-hook)."
    )
    assert len(messages) == 2
    pending = DeliveryCursor.parse(cursor).pending
    assert [(p.targets, p.attempts) for p in pending.values()] == [(("json-hook",), 1)] * 2
    assert "webhook 'json-hook' (TEST_JSON_WEBHOOK_URL -> http://127.0.0.1:" in logs
    assert "Connection refused" in logs
    assert "s3cr3tT0ken" not in logs + reason + cursor

    webhook.start()  # back on the same port
    reason, cursor = tick(instance, path, cursor)
    assert reason == "2 alert(s): 2 delivered, 0 delivery error(s)."
    assert [b["check_name"] for b in webhook.bodies()] == ["contract", "untagged_share"]
    assert len(messages) == 2  # the email target is not sent the retried alerts again

    reason, cursor = tick(instance, path, cursor)
    assert reason == "Nothing to deliver: no new failed asset checks or failed runs."
    assert len(webhook.bodies()) == 2
    assert DeliveryCursor.parse(cursor).pending == {}


def test_a_dead_target_is_given_up_after_max_attempts(instance, rules_file, webhook, capfd):
    path = rules_file(email=[], max_attempts=2, min_severity="error")
    _, cursor = tick(instance, path, None)
    fail_a_check_and_a_run(instance)
    webhook.statuses[SECRET_PATH] = 500

    reason, cursor = tick(instance, path, cursor)
    assert (
        reason
        == "2 alert(s): 0 delivered, 1 delivery error(s); 2 held for retry (failing: json-hook)."
    )
    capfd.readouterr()
    reason, cursor = tick(instance, path, cursor)
    logs = capfd.readouterr().err
    assert reason == "2 alert(s): 0 delivered, 1 delivery error(s); 2 given up."
    assert "Giving up on check_failed-" in logs
    assert "Giving up on run_failed-" in logs
    assert "HTTP 500 Internal Server Error: no_service ***" in logs
    assert "s3cr3tT0ken" not in logs
    assert DeliveryCursor.parse(cursor).pending == {}
    # one POST per tick: after the first failure the target is skipped for the rest of the tick
    assert len(webhook.requests) == 2


def test_no_targets_is_a_skip_with_a_reason(instance, rules_file, webhook):
    path = rules_file(webhooks=[], email=[])
    _, cursor = tick(instance, path, None)
    fail_a_check_and_a_run(instance)
    reason, cursor = tick(instance, path, cursor)
    assert reason.startswith(f"No alert targets configured in {path}")
    assert DeliveryCursor.parse(cursor).after == instance.event_log_storage.get_maximum_record_id()
    assert webhook.requests == []


def test_the_sensor_is_part_of_the_definitions(tmp_path):
    defs = build_defs(
        Settings(
            landing_url=str(tmp_path / "landing"),
            warehouse=str(tmp_path / "warehouse.duckdb"),
            start_date="2023-01-01",
            config_path=None,
        )
    )
    sensor = defs.resolve_sensor_def("alerts_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30
    assert not sensor.has_jobs  # it only delivers
