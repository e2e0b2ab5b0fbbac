"""Alert payloads, config validation, redaction and per-target errors (lib/alerts.py)."""

import hashlib
import json
import socket
import threading
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError

from finops_assets.lib.alerts import (
    AlertsConfig,
    Attachment,
    DeliveryCursor,
    EmailTarget,
    PendingDelivery,
    WebhookTarget,
    check_failed_alert,
    deliver,
    email_message,
    json_payload,
    partition_label,
    redact,
    run_failed_alert,
    slack_payload,
)
from finops_assets.lib.rules import RulesError, parse_rules

WHEN = datetime(2025, 1, 6, 7, 30, tzinfo=UTC)
SECRET_PATH = "/services/T0000/B0000/s3cr3tT0ken"


class WebhookReceiver:
    """A real HTTP endpoint on 127.0.0.1 that records every POST. It answers 200, or the status
    set for the path (an error body echoes the path, as some services do), and restarts on the
    same port."""

    def __init__(self):
        self.statuses: dict[str, int] = {}  # path -> HTTP status, 200 when not listed
        self.requests: list[dict] = []
        self.port: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "WebhookReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                status = receiver.statuses.get(self.path, 200)
                answer = b"ok" if status < 400 else f"no_service {self.path}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port or 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def url(self, path: str = SECRET_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str = SECRET_PATH) -> list[dict]:
        return [r["body"] for r in self.requests if r["path"] == path]


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_alert(**overrides):
    values = {
        "storage_id": 42,
        "asset_key": "core/cost_facts",
        "check_name": "contract",
        "severity": "error",
        "timestamp": WHEN,
        "description": "3 contract violation(s) in 1500 rows of core.cost_facts",
        "partition": "2025-01-05",
        "run_id": "0f1e2d3c-run",
        "job_name": "daily_refresh",
        "metadata": {
            "violations": 3,
            "rows_checked": 1500,
            "failures_by_check": "| column | check |\n|---|---|",
            "sample": "x" * 500,
        },
        "ui_base_url": "https://dagster.example.com/",
    }
    values["ui_base_url"] = AlertsConfig(ui_base_url=values["ui_base_url"]).ui_base_url
    return check_failed_alert(**{**values, **overrides})


def run_alert():
    return run_failed_alert(
        storage_id=43,
        run_id="9a8b7c6d-run",
        job_name="raw/aws_cur",
        timestamp=WHEN,
        message='Execution of run for "__ASSET_JOB" failed.\nboom: ValueError: unreadable file',
        partition=partition_label(
            {
                "dagster/asset_partition_range_start": "2025-01-01",
                "dagster/asset_partition_range_end": "2025-01-31",
            }
        ),
        ui_base_url="https://dagster.example.com",
    )


def test_check_alert_json_payload_has_every_field():
    payload = json_payload(check_alert())
    assert payload == {
        "alert_id": "check_failed-42",
        "kind": "check_failed",
        "title": "Check failed: core/cost_facts contract [2025-01-05]",
        "text": "3 contract violation(s) in 1500 rows of core.cost_facts\n"
        "Run 0f1e2d3c-run of daily_refresh",
        "severity": "error",
        "timestamp": "2025-01-06T07:30:00+00:00",
        "asset_key": "core/cost_facts",
        "check_name": "contract",
        "partition": "2025-01-05",
        "run_id": "0f1e2d3c-run",
        "job_name": "daily_refresh",
        "link": "https://dagster.example.com/assets/core/cost_facts?view=checks&checkDetail=contract",
        # markdown tables and long texts stay in the UI
        "metadata": {"violations": "3", "rows_checked": "1500"},
        "owners": [],
        "attachments": [],
    }
    assert json.loads(json.dumps(payload)) == payload


def test_run_alert_names_job_partition_range_and_links_the_run():
    alert = run_alert()
    assert alert.title == "Run failed: raw/aws_cur [2025-01-01...2025-01-31]"
    assert alert.severity == "error"
    assert alert.link == "https://dagster.example.com/runs/9a8b7c6d-run"
    assert alert.text.endswith("ValueError: unreadable file\nRun 9a8b7c6d-run")
    assert partition_label({"dagster/partition": "2025-01-05"}) == "2025-01-05"
    assert partition_label({}) is None


def test_slack_payload_shape():
    payload = slack_payload(check_alert(description="rows <0 & more"))
    assert payload["text"].startswith(":red_circle: Check failed: core/cost_facts contract")
    assert [b["type"] for b in payload["blocks"]] == ["header", "section", "section", "section"]
    header, details, facts, link = payload["blocks"]
    assert header["text"] == {
        "type": "plain_text",
        "text": "Check failed: core/cost_facts contract [2025-01-05]",
    }
    assert details["text"]["text"].startswith("rows &lt;0 &amp; more")
    assert [f["text"] for f in facts["fields"]] == [
        "*Severity*\nERROR",
        "*Asset*\ncore/cost_facts",
        "*Check*\ncontract",
        "*Partition*\n2025-01-05",
        "*Job*\ndaily_refresh",
        "*Run*\n0f1e2d3c-run",
        "*violations*\n3",
        "*rows_checked*\n1500",
    ]
    assert link["text"]["text"] == (
        "<https://dagster.example.com/assets/core/cost_facts?view=checks&checkDetail=contract"
        "|Open in Dagster>"
    )


def test_slack_payload_respects_block_limits():
    alert = check_alert(asset_key="a/" + "b" * 300, description="d" * 5000, ui_base_url=None)
    payload = slack_payload(alert)
    assert len(payload["blocks"]) == 3  # no link block without ui_base_url
    assert len(payload["blocks"][0]["text"]["text"]) == 150
    assert len(payload["blocks"][1]["text"]["text"]) == 3000


def test_warn_alert_uses_the_warning_marker():
    assert slack_payload(check_alert(severity="warn"))["text"].startswith(":warning: ")


def test_email_message():
    target = EmailTarget(
        name="oncall",
        smtp_host="smtp.example.com",
        sender="dagster@example.com",
        recipients=["finops@example.com", "oncall@example.com"],
    )
    message = email_message(check_alert(), target)
    assert message["Subject"] == (
        "[Dagster ERROR] Check failed: core/cost_facts contract [2025-01-05]"
    )
    assert message["To"] == "finops@example.com, oncall@example.com"
    assert message["X-Dagster-Alert-Id"] == "check_failed-42"
    body = message.get_content()
    for line in (
        "Asset: core/cost_facts",
        "Check: contract",
        "Partition: 2025-01-05",
        "When: 2025-01-06 07:30:00 UTC",
        "  violations: 3",
        "Open in Dagster: https://dagster.example.com/assets/core/cost_facts?view=checks"
        "&checkDetail=contract",
    ):
        assert line in body.splitlines(), body


def test_redact_hides_url_secret_parts_raw_and_encoded():
    url = f"https://hooks.slack.com{SECRET_PATH}?token=abc123"
    text = f"failed {url} / path {SECRET_PATH} / encoded {SECRET_PATH.replace('/', '%2F')}"
    redacted = redact(text, [url, None, ""])
    assert "s3cr3tT0ken" not in redacted
    assert "abc123" not in redacted
    assert redacted.count("***") == 3


def test_config_refuses_a_secret_in_place_of_an_env_var_name_without_echoing_it():
    with pytest.raises(ValidationError) as error:
        WebhookTarget(name="slack", url_env=f"https://hooks.slack.com{SECRET_PATH}")
    assert "name of an environment variable" in str(error.value)
    errors = error.value.errors(include_input=False, include_url=False)
    assert "s3cr3tT0ken" not in json.dumps(errors, default=str)


def test_config_rules():
    with pytest.raises(ValidationError, match="alert target names must be unique"):
        AlertsConfig(
            webhooks=[{"name": "ops", "url_env": "A"}],
            email=[{"name": "ops", "smtp_host": "h", "sender": "a@b.c", "recipients": ["d@e.f"]}],
        )
    with pytest.raises(ValidationError, match="clear text"):
        EmailTarget(
            name="ops",
            smtp_host="h",
            starttls=False,
            username_env="USER_VAR",
            password_env="PASSWORD_VAR",
            sender="a@b.c",
            recipients=["d@e.f"],
        )
    with pytest.raises(ValidationError, match="not email addresses: 'finops'"):
        EmailTarget(name="ops", smtp_host="h", sender="a@b.c", recipients=["finops"])
    assert AlertsConfig(min_severity="error").wants("warn") is False
    assert AlertsConfig().wants("warn") is True


def test_rules_yaml_alerts_section_errors_name_the_line():
    text = """
dimensions:
  department: {aliases: [department]}
  team: {aliases: [team]}
  environment: {aliases: [env]}
  cost_center: {aliases: [costcenter]}
alerts:
  webhooks:
    - name: slack
      url_env: FINOPS_SLACK_WEBHOOK_URL
      formatt: slack
"""
    with pytest.raises(RulesError, match=r"rules\.yaml:11: alerts\.webhooks\.0\.formatt: unknown"):
        parse_rules(text, "rules.yaml")
    rules = parse_rules(text.replace("formatt", "format"), "rules.yaml")
    assert rules.alerts.webhooks[0].format == "slack"


def test_deliver_reports_one_redacted_error_per_failing_target(receiver):
    receiver.statuses[SECRET_PATH] = 404
    dead_port = closed_port()
    config = AlertsConfig(
        webhooks=[
            {"name": "echoing-404", "url_env": "HOOK_404"},
            {"name": "refused", "url_env": "HOOK_DEAD"},
            {"name": "unset", "url_env": "HOOK_UNSET"},
            {"name": "fine", "url_env": "HOOK_OK", "format": "slack"},
        ],
        email=[
            {
                "name": "mail",
                "smtp_host": "127.0.0.1",
                "smtp_port": dead_port,
                "username_env": "SMTP_USER",
                "password_env": "SMTP_PASSWORD",
                "sender": "dagster@example.com",
                "recipients": ["finops@example.com"],
                "timeout_seconds": 2,
            }
        ],
    )
    environ = {
        "HOOK_404": receiver.url(),
        "HOOK_DEAD": f"http://127.0.0.1:{dead_port}{SECRET_PATH}",
        "HOOK_OK": receiver.url("/fine"),
        "SMTP_USER": "svc-dagster",
        "SMTP_PASSWORD": "hunter2-password",
    }
    errors = deliver(check_alert(), config, environ)
    assert len(errors) == 4, errors
    echoing, refused, unset, mail = errors
    assert echoing.startswith(
        f"webhook 'echoing-404' (HOOK_404 -> http://127.0.0.1:{receiver.port})"
    )
    assert "HTTP 404" in echoing
    assert "no_service ***" in echoing  # the body echoed the secret path
    assert refused.startswith(f"webhook 'refused' (HOOK_DEAD -> http://127.0.0.1:{dead_port})")
    assert "Connection refused" in refused
    assert unset == (
        "webhook 'unset': environment variable HOOK_UNSET is not set; set it where the Dagster "
        "daemon and code server run"
    )
    assert mail.startswith(f"email 'mail' (127.0.0.1:{dead_port}): ConnectionRefusedError")
    for error in errors:
        assert "s3cr3tT0ken" not in error
        assert "hunter2" not in error
    # the working target got the alert anyway, once
    assert len(receiver.bodies("/fine")) == 1
    assert receiver.bodies("/fine")[0]["blocks"][0]["type"] == "header"
    # `only` limits delivery to the named targets (the sensor's retries)
    assert deliver(check_alert(), config, environ, only=["fine"]) == []
    assert len(receiver.bodies("/fine")) == 2


def test_webhook_posts_json_with_idempotency_key(receiver):
    config = AlertsConfig(webhooks=[{"name": "hook", "url_env": "HOOK"}])
    assert deliver(run_alert(), config, {"HOOK": receiver.url()}) == []
    (request,) = receiver.requests
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert request["headers"]["Idempotency-Key"] == "run_failed-43"
    assert request["body"]["kind"] == "run_failed"
    assert request["body"]["partition"] == "2025-01-01...2025-01-31"


def test_webhook_refuses_non_http_urls():
    config = AlertsConfig(webhooks=[{"name": "hook", "url_env": "HOOK"}])
    (error,) = deliver(run_alert(), config, {"HOOK": "file:///etc/passwd"})
    assert error == "webhook 'hook' (HOOK -> file://None): HOOK must hold an http(s) URL"


def test_cursor_round_trip_and_bad_cursor():
    cursor = DeliveryCursor(after=17, pending={12: PendingDelivery(("slack",), 3)})
    assert DeliveryCursor.parse(cursor.dumps()) == cursor
    assert DeliveryCursor.parse("25") == DeliveryCursor(after=25)
    assert DeliveryCursor.parse(None) is None
    with pytest.raises(ValueError, match="Set cursor"):
        DeliveryCursor.parse('{"pending": {}}')


def test_an_attachment_is_attached_to_email_and_described_to_webhooks():
    page = "<!DOCTYPE html><title>Report</title><p>Coût 1\u202f234,00 €</p>".encode()
    alert = replace(
        check_alert(),
        attachments=(Attachment("finops-report-2025-01.html", page, "text/html"),),
    )
    target = EmailTarget(
        name="finance", smtp_host="smtp.example.com", sender="a@b.c", recipients=["d@e.f"]
    )
    message = email_message(alert, target)
    [part] = list(message.iter_attachments())
    assert part.get_filename() == "finops-report-2025-01.html"
    assert part.get_content_type() == "text/html"
    assert part.get_content_charset() == "utf-8"
    assert part["Content-Transfer-Encoding"] == "base64"
    assert part.get_payload(decode=True) == page
    assert "Asset: core/cost_facts" in message.get_body(("plain",)).get_content()
    [described] = json_payload(alert)["attachments"]
    assert described == {
        "filename": "finops-report-2025-01.html",
        "content_type": "text/html",
        "size_bytes": len(page),
        "sha256": hashlib.sha256(page).hexdigest(),
    }
    context = slack_payload(alert)["blocks"][-1]
    assert context["type"] == "context"
    assert f"finops-report-2025-01.html ({len(page):,} bytes)" in context["elements"][0]["text"]
    # Without attachments nothing changes.
    assert json_payload(check_alert())["attachments"] == []
    assert not list(email_message(check_alert(), target).iter_attachments())
