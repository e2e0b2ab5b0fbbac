"""Alert targets (webhooks, SMTP email) and the messages sent to them.

Plain Python with no Dagster imports: the sensor in ``defs/alerts`` turns event log records into
:class:`Alert` objects, this module formats and delivers them. Webhook URLs (a Slack incoming
webhook URL *is* its credential) and SMTP passwords are secrets, so the rules YAML only names the
environment variables holding them, and every delivery error is redacted before anyone sees it.
"""

from __future__ import annotations

import hashlib
import json
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# info: a message people asked for (the monthly report), not a failure.
Severity = Literal["info", "warn", "error"]
AlertKind = Literal["check_failed", "run_failed", "report"]

SEVERITY_RANK: dict[str, int] = {"info": 0, "warn": 1, "error": 2}
REDACTED = "***"
USER_AGENT = "finops-assets-alerts/1"

# Slack Block Kit limits: header text 150 characters, section text 3000, 10 fields of 2000.
_SLACK_HEADER_MAX = 150
_SLACK_SECTION_MAX = 3000
_SLACK_FIELDS_MAX = 10
_METADATA_ENTRIES_MAX = 8
_METADATA_VALUE_MAX = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _env_name(value: str | None, key: str, example: str) -> str | None:
    """An environment variable *name*: a secret pasted into the YAML is refused, not echoed."""
    if value is None:
        return None
    if not value.isidentifier() or not value.isascii():
        raise ValueError(
            f"{key} is the name of an environment variable (e.g. {example}), not its value; "
            "secrets do not belong in the rules file"
        )
    return value


class WebhookTarget(_Strict):
    """An HTTP endpoint that receives one POST per alert (generic JSON or a Slack message)."""

    name: str = Field(min_length=1)
    # The URL is a credential (Slack, Teams, PagerDuty put the token in it): only its env var.
    url_env: str
    format: Literal["json", "slack"] = "json"
    timeout_seconds: float = Field(default=10, gt=0, le=60)

    @field_validator("url_env")
    @classmethod
    def _check_env(cls, value: str) -> str:
        return _env_name(value, "url_env", "FINOPS_SLACK_WEBHOOK_URL") or value


class EmailTarget(_Strict):
    """An SMTP server and the people who get one plain-text email per alert."""

    name: str = Field(min_length=1)
    smtp_host: str = Field(min_length=1)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username_env: str | None = None
    password_env: str | None = None
    sender: str
    recipients: tuple[str, ...] = Field(min_length=1)
    timeout_seconds: float = Field(default=10, gt=0, le=60)

    @field_validator("username_env", "password_env")
    @classmethod
    def _check_env(cls, value: str | None) -> str | None:
        return _env_name(value, "username_env / password_env", "FINOPS_SMTP_PASSWORD")

    @field_validator("sender")
    @classmethod
    def _check_sender(cls, value: str) -> str:
        if "@" not in parseaddr(value)[1]:
            raise ValueError(f"sender {value!r} is not an email address")
        return value

    @field_validator("recipients")
    @classmethod
    def _check_recipients(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in values if "@" not in parseaddr(v)[1]]
        if bad:
            raise ValueError(f"not email addresses: {', '.join(map(repr, bad))}")
        return values

    @model_validator(mode="after")
    def _check_login(self) -> EmailTarget:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("give both username_env and password_env, or neither")
        if self.password_env and not self.starttls:
            raise ValueError(
                "password_env without starttls would send the SMTP password in clear text; "
                "set starttls: true"
            )
        return self


class AlertsConfig(_Strict):
    """The ``alerts:`` section of the rules YAML: where failed checks and runs are sent."""

    webhooks: tuple[WebhookTarget, ...] = ()
    email: tuple[EmailTarget, ...] = ()
    # warn: every failed check; error: only checks with severity ERROR (failed runs are errors).
    min_severity: Severity = "warn"
    include_run_failures: bool = True
    # e.g. https://dagster.example.com: alerts link to the run or asset check in the UI.
    ui_base_url: str | None = None
    # Ticks (about 30 s apart) a failing target is retried before the alert is given up.
    max_attempts: int = Field(default=20, ge=1)
    # On the sensor's very first tick, failures recorded this many minutes before it are still
    # sent (the daemon may run a load before it first evaluates this sensor); older history is
    # not replayed. 0: start at the end of the event log.
    replay_minutes: float = Field(default=60, ge=0)

    @field_validator("ui_base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
            raise ValueError(f"ui_base_url {value!r} must be an http(s) URL of the Dagster UI")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _unique_names(self) -> AlertsConfig:
        names = [t.name for t in self.targets]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(
                f"alert target names must be unique (they key retries): {', '.join(twice)}"
            )
        return self

    @property
    def targets(self) -> tuple[WebhookTarget | EmailTarget, ...]:
        return (*self.webhooks, *self.email)

    def wants(self, severity: Severity) -> bool:
        return SEVERITY_RANK[severity] >= SEVERITY_RANK[self.min_severity]


@dataclass(frozen=True)
class Attachment:
    """A file sent with an alert: attached to emails; webhooks get its name, type, size and
    sha256 (a chat webhook cannot carry a file), so a receiver can tell which file was sent."""

    filename: str
    content: bytes
    content_type: str = "text/html"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size_bytes": len(self.content),
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class Alert:
    """One failure a person should hear about. ``alert_id`` is stable across retries (built from
    the event's storage id) so receivers can drop a duplicate."""

    alert_id: str
    kind: AlertKind
    title: str
    text: str
    severity: Severity
    timestamp: datetime
    asset_key: str | None = None
    check_name: str | None = None
    partition: str | None = None
    run_id: str | None = None
    job_name: str | None = None
    link: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Owners (rules YAML owners:) who get this alert too, besides every target.
    route_to: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()

    def facts(self) -> list[tuple[str, str | None]]:
        """The labelled fields every format shows (empty ones are left out by the formats)."""
        return [
            ("Severity", self.severity.upper()),
            ("Asset", self.asset_key),
            ("Check", self.check_name),
            ("Partition", self.partition),
            ("Job", self.job_name),
            ("Run", self.run_id),
        ]


# Check metadata key naming the owners an alert is routed to (comma-separated).
ROUTE_TO_KEY = "finops/route_to"
OWNER_TARGET_PREFIX = "owner:"


def owner_targets(
    config: AlertsConfig, owners: Mapping[str, tuple[Sequence[str], str | None]]
) -> tuple[dict[str, WebhookTarget | EmailTarget], list[str]]:
    """Targets for owners' own alerts: per owner with recipients, a copy of the first email
    target sending to them; per owner with a webhook variable, a webhook target in the first
    webhook target's format. Also the problems (recipients but no email server configured)."""
    targets: dict[str, WebhookTarget | EmailTarget] = {}
    problems = []
    email = config.email[0] if config.email else None
    webhook_format = config.webhooks[0].format if config.webhooks else "json"
    for owner, (recipients, webhook_env) in sorted(owners.items()):
        if recipients:
            if email is None:
                problems.append(
                    f"owner {owner} has alert_recipients but alerts.email has no server to send "
                    "through; add an email target"
                )
            else:
                name = f"{OWNER_TARGET_PREFIX}{owner}:email"
                targets[name] = email.model_copy(
                    update={"name": name, "recipients": tuple(recipients)}
                )
        if webhook_env:
            name = f"{OWNER_TARGET_PREFIX}{owner}:webhook"
            targets[name] = WebhookTarget(name=name, url_env=webhook_env, format=webhook_format)
    return targets, problems


def targets_for(alert: Alert, base: Sequence[str], owned: Mapping[str, object]) -> tuple[str, ...]:
    """Every configured target, then the owner targets of the owners the alert is routed to."""
    extra = [
        name
        for owner in alert.route_to
        for name in owned
        if name.startswith(f"{OWNER_TARGET_PREFIX}{owner}:")
    ]
    return (*base, *extra)


def alert_id_for(kind: AlertKind, storage_id: int) -> str:
    return f"{kind}-{storage_id}"


def run_url(ui_base_url: str | None, run_id: str | None) -> str | None:
    if not ui_base_url or not run_id:
        return None
    return f"{ui_base_url}/runs/{quote(run_id, safe='')}"


def asset_check_url(ui_base_url: str | None, asset_key: str, check_name: str) -> str | None:
    """The asset's Checks tab with the check opened, as the Dagster UI builds it."""
    if not ui_base_url:
        return None
    path = "/".join(quote(part, safe="") for part in asset_key.split("/"))
    return f"{ui_base_url}/assets/{path}?{urlencode({'view': 'checks', 'checkDetail': check_name})}"


def partition_label(tags: Mapping[str, str]) -> str | None:
    """The partition (or ``start...end`` range) a run targeted, from its tags."""
    if tags.get("dagster/partition"):
        return tags["dagster/partition"]
    start = tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/asset_partition_range_end")
    if start and end:
        return start if start == end else f"{start}...{end}"
    return None


def small_metadata(values: Mapping[str, Any]) -> dict[str, str]:
    """The first few scalar metadata entries (counts, short texts) as strings; tables, markdown
    and JSON stay in the UI where they render."""
    kept: dict[str, str] = {}
    for key, value in values.items():
        if len(kept) >= _METADATA_ENTRIES_MAX:
            break
        if isinstance(value, bool | int | float) or (
            isinstance(value, str) and len(value) <= _METADATA_VALUE_MAX and "\n" not in value
        ):
            kept[str(key)] = str(value)
    return kept


def check_failed_alert(
    *,
    storage_id: int,
    asset_key: str,
    check_name: str,
    severity: Severity,
    timestamp: datetime,
    description: str | None = None,
    partition: str | None = None,
    run_id: str | None = None,
    job_name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    ui_base_url: str | None = None,
) -> Alert:
    """``metadata[ROUTE_TO_KEY]`` (comma-separated owners) routes the alert to those owners."""
    where = f" [{partition}]" if partition else ""
    route = str((metadata or {}).get(ROUTE_TO_KEY) or "")
    lines = [description.strip() if description else "The check failed (no description given)."]
    if run_id:  # Dagster's own job names (__ASSET_JOB...) tell a person nothing
        of_job = f" of {job_name}" if job_name and not job_name.startswith("__") else ""
        lines.append(f"Run {run_id}{of_job}")
    return Alert(
        alert_id=alert_id_for("check_failed", storage_id),
        kind="check_failed",
        title=f"Check failed: {asset_key} {check_name}{where}",
        text="\n".join(lines),
        severity=severity,
        timestamp=timestamp,
        asset_key=asset_key,
        check_name=check_name,
        partition=partition,
        run_id=run_id or None,
        job_name=job_name,
        link=asset_check_url(ui_base_url, asset_key, check_name) or run_url(ui_base_url, run_id),
        metadata=small_metadata({k: v for k, v in (metadata or {}).items() if k != ROUTE_TO_KEY}),
        route_to=tuple(o.strip() for o in route.split(",") if o.strip()),
    )


def run_failed_alert(
    *,
    storage_id: int,
    run_id: str,
    job_name: str,
    timestamp: datetime,
    message: str,
    partition: str | None = None,
    assets: Sequence[str] = (),
    ui_base_url: str | None = None,
) -> Alert:
    """``assets`` (the run's asset keys) name the run in the title when the job is one of
    Dagster's own (``__ASSET_JOB``, ``__ephemeral_asset_job__``), which says nothing to a person."""
    where = f" [{partition}]" if partition else ""
    subject = job_name
    if job_name.startswith("__") and assets:
        subject = ", ".join(assets[:3]) + (
            f" and {len(assets) - 3} more" if len(assets) > 3 else ""
        )
    return Alert(
        alert_id=alert_id_for("run_failed", storage_id),
        kind="run_failed",
        title=f"Run failed: {subject}{where}",
        text=f"{message.strip()}\nRun {run_id}",
        severity="error",
        timestamp=timestamp,
        partition=partition,
        run_id=run_id,
        job_name=job_name,
        link=run_url(ui_base_url, run_id),
    )


# Payloads ---------------------------------------------------------------------------------------


def json_payload(alert: Alert) -> dict[str, Any]:
    """Every field, for receivers that route or store alerts themselves."""
    return {
        "alert_id": alert.alert_id,
        "kind": alert.kind,
        "title": alert.title,
        "text": alert.text,
        "severity": alert.severity,
        "timestamp": alert.timestamp.astimezone(UTC).isoformat(),
        "asset_key": alert.asset_key,
        "check_name": alert.check_name,
        "partition": alert.partition,
        "run_id": alert.run_id,
        "job_name": alert.job_name,
        "link": alert.link,
        "metadata": dict(alert.metadata),
        "owners": list(alert.route_to),
        "attachments": [a.describe() for a in alert.attachments],
    }


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(alert: Alert) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` is the notification fallback, ``blocks`` the
    message (header, details, facts, link)."""
    marker = {"error": ":red_circle:", "warn": ":warning:"}.get(alert.severity, ":bar_chart:")
    facts = [*alert.facts(), *alert.metadata.items()]
    fields = [
        {"type": "mrkdwn", "text": _clip(f"*{_slack_escape(k)}*\n{_slack_escape(v)}", 2000)}
        for k, v in facts
        if v
    ][:_SLACK_FIELDS_MAX]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(alert.title, _SLACK_HEADER_MAX)},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(_slack_escape(alert.text), _SLACK_SECTION_MAX),
            },
        },
        {"type": "section", "fields": fields},
    ]
    if alert.link:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"<{alert.link}|Open in Dagster>"},
            }
        )
    if alert.attachments:
        files = ", ".join(
            f"{_slack_escape(a.filename)} ({len(a.content):,} bytes)" for a in alert.attachments
        )
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _clip(f"Sent by email: {files}", 2000)}],
            }
        )
    fallback = f"{marker} {alert.title}"
    if alert.link:
        fallback += f" <{alert.link}|Open in Dagster>"
    return {"text": fallback, "blocks": blocks}


def email_message(alert: Alert, target: EmailTarget) -> EmailMessage:
    """A plain-text email whose subject names the asset and check (or the job) and severity;
    the alert's attachments (the monthly report) attached as files."""
    message = EmailMessage()
    tag = "FinOps report" if alert.kind == "report" else f"Dagster {alert.severity.upper()}"
    message["Subject"] = f"[{tag}] {alert.title}"
    message["From"] = target.sender
    message["To"] = ", ".join(target.recipients)
    message["Date"] = format_datetime(alert.timestamp.astimezone(UTC))
    message["Message-ID"] = make_msgid(idstring=alert.alert_id)
    message["X-Dagster-Alert-Id"] = alert.alert_id
    facts = [
        *alert.facts(),
        ("When", alert.timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")),
    ]
    body = [alert.title, "", alert.text, ""]
    body += [f"{k}: {v}" for k, v in facts if v]
    if alert.metadata:
        body += ["", "Details:"] + [f"  {k}: {v}" for k, v in alert.metadata.items()]
    if alert.link:
        body += ["", f"Open in Dagster: {alert.link}"]
    message.set_content("\n".join(body) + "\n")
    for attachment in alert.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        # The exact bytes, base64-encoded; text declared UTF-8 so any mail client decodes it.
        message.add_attachment(
            attachment.content,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
            params={"charset": "utf-8"} if maintype == "text" else None,
        )
    return message


# Delivery ---------------------------------------------------------------------------------------


class DeliveryError(Exception):
    """A target did not take an alert. The message is already redacted. ``retry`` is False when
    sending again would duplicate the alert for people who already got it."""

    def __init__(self, message: str, retry: bool = True):
        super().__init__(message)
        self.retry = retry


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (and, for URLs, their path, query and credentials, raw or
    percent-encoded) replaced by ``***``."""
    needles: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        needles.update({secret, quote(secret, safe=""), quote(secret, safe="/:")})
        parts = urlsplit(secret)
        if parts.scheme and parts.netloc:
            pieces = [parts.path, parts.query, parts.password, parts.username, parts.fragment]
            # a token-like path segment alone (Slack: /services/T…/B…/<token>)
            pieces += [segment for segment in parts.path.split("/") if len(segment) >= 16]
            for piece in pieces:
                if piece and len(piece) > 1:
                    needles.update({piece, quote(piece, safe="")})
    for needle in sorted(needles, key=len, reverse=True):
        if len(needle) >= 4:
            text = text.replace(needle, REDACTED)
    return text


def _secret_from_env(environ: Mapping[str, str], variable: str, target_name: str) -> str:
    value = environ.get(variable, "")
    if not value:
        raise DeliveryError(
            f"{target_name}: environment variable {variable} is not set; set it where the "
            "Dagster daemon and code server run"
        )
    return value


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would re-send the alert as a GET (or to a host nobody configured): fail instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def _describe_url(variable: str, url: str) -> str:
    """Where a webhook goes, without the secret parts: ``VAR -> https://hooks.slack.com``."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{variable} -> {parts.scheme}://{parts.hostname}{port}"
    except ValueError:
        return variable


def _send_webhook(alert: Alert, target: WebhookTarget, environ: Mapping[str, str]) -> None:
    url = _secret_from_env(environ, target.url_env, f"webhook {target.name!r}")
    label = f"webhook {target.name!r} ({_describe_url(target.url_env, url)})"
    if urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError(f"{label}: {target.url_env} must hold an http(s) URL")
    payload = slack_payload(alert) if target.format == "slack" else json_payload(alert)
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": alert.alert_id,
        },
    )
    try:
        with _OPENER.open(request, timeout=target.timeout_seconds) as response:
            response.read(4096)
    except urllib.error.HTTPError as error:
        with error:
            detail = error.read(300).decode("utf-8", errors="replace").strip()
        message = f"{label}: HTTP {error.code} {error.reason}" + (f": {detail}" if detail else "")
        raise DeliveryError(redact(message, [url])) from None
    except Exception as error:  # a dead target must not stop the others: report, never raise
        reason = getattr(error, "reason", None) or f"{type(error).__name__}: {error}"
        raise DeliveryError(redact(f"{label}: cannot deliver: {reason}", [url])) from None


def _send_email(alert: Alert, target: EmailTarget, environ: Mapping[str, str]) -> None:
    label = f"email {target.name!r} ({target.smtp_host}:{target.smtp_port})"
    username = password = None
    if target.username_env and target.password_env:
        username = _secret_from_env(environ, target.username_env, label)
        password = _secret_from_env(environ, target.password_env, label)
    message = email_message(alert, target)
    try:
        with smtplib.SMTP(
            target.smtp_host, target.smtp_port, timeout=target.timeout_seconds
        ) as smtp:
            if target.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if username and password:
                smtp.login(username, password)
            refused = smtp.send_message(message)
    except Exception as error:  # a dead target must not stop the others: report, never raise
        raise DeliveryError(
            redact(f"{label}: {type(error).__name__}: {error}", [username, password])
        ) from None
    if refused:
        # Some recipients got it: sending again would mail them twice, so report and stop.
        raise DeliveryError(
            f"{label}: the server refused {', '.join(sorted(refused))}; the other recipients "
            "got the alert",
            retry=False,
        )


def send(
    alert: Alert, target: WebhookTarget | EmailTarget, environ: Mapping[str, str] | None = None
) -> None:
    """Deliver one alert to one target or raise :class:`DeliveryError` (redacted message)."""
    environ = os.environ if environ is None else environ
    if isinstance(target, WebhookTarget):
        _send_webhook(alert, target, environ)
    else:
        _send_email(alert, target, environ)


def deliver(
    alert: Alert,
    config: AlertsConfig,
    environ: Mapping[str, str] | None = None,
    only: Iterable[str] | None = None,
) -> list[str]:
    """Send ``alert`` to every target (or those named in ``only``); one redacted error per target
    that failed, so one dead target never stops the others."""
    wanted = None if only is None else set(only)
    errors: list[str] = []
    for target in config.targets:
        if wanted is not None and target.name not in wanted:
            continue
        try:
            send(alert, target, environ)
        except DeliveryError as error:
            errors.append(str(error))
    return errors


# Sensor cursor ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingDelivery:
    """An alert some targets have not taken yet: who is still owed it, and after how many ticks."""

    targets: tuple[str, ...]
    attempts: int


@dataclass(frozen=True)
class DeliveryCursor:
    """The alert sensor's cursor: every event up to storage id ``after`` has been read, and
    ``pending`` holds the (few) events below it that a target has not taken yet, so a retry goes
    only to the targets that failed and never repeats an alert to one that got it."""

    after: int
    pending: Mapping[int, PendingDelivery] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> DeliveryCursor | None:
        """None for a sensor that never ticked. A bare integer (a storage id) is accepted too."""
        if not text:
            return None
        if text.strip().lstrip("-").isdigit():
            return cls(after=int(text))
        try:
            data = json.loads(text)
            return cls(
                after=int(data["after"]),
                pending={
                    int(storage_id): PendingDelivery(
                        targets=tuple(str(t) for t in entry["targets"]),
                        attempts=int(entry["attempts"]),
                    )
                    for storage_id, entry in data.get("pending", {}).items()
                },
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(
                f"alerts sensor cursor {text[:200]!r} is not valid ({error}); reset the sensor's "
                "cursor in the UI (Sensors > alerts_sensor > Set cursor) to an event storage id"
            ) from None

    def dumps(self) -> str:
        return json.dumps(
            {
                "after": self.after,
                "pending": {
                    str(storage_id): {"targets": list(entry.targets), "attempts": entry.attempts}
                    for storage_id, entry in sorted(self.pending.items())
                },
            },
            separators=(",", ":"),
        )
