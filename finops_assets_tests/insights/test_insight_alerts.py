"""Anomaly and budget alerts through the real alerts sensor: to every target (FinOps) and, for
the owner's series and budgets, to the owner's own recipients and webhook; each once."""

from datetime import date, timedelta

import dagster as dg
import duckdb
import numpy as np
import pytest
import yaml

from finops_assets.lib.rules import default_rules_path
from finops_assets_tests.alerts.test_alerts_sensor import Mailbox, tick
from finops_assets_tests.insights import synthetic
from finops_assets_tests.insights.test_anomalies_asset import checks, materialize
from finops_assets_tests.lib.test_alerts import WebhookReceiver

START = date(2026, 1, 1)
DAYS = 140
LAST = START + timedelta(days=DAYS - 1)  # 2026-05-20
OWNER_PATH = "/hooks/payments"


@pytest.fixture()
def webhook():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture()
def mailbox():
    from aiosmtpd.controller import Controller

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


def test_an_anomaly_and_a_budget_reach_finops_and_the_owner_once(
    tmp_path, webhook, mailbox, monkeypatch
):
    path = str(tmp_path / "warehouse.duckdb")
    rows = synthetic.frame(
        np.random.default_rng(9), START, DAYS, spikes=[(DAYS - 3, "i-pay-1", 3000.0)]
    )
    with duckdb.connect(path) as con:
        synthetic.create_table(con, "core.allocated_costs", rows)
    monkeypatch.setenv("FINOPS_TEST_WEBHOOK_URL", webhook.url())
    monkeypatch.setenv("PAYMENTS_WEBHOOK_URL", webhook.url(OWNER_PATH))
    rules = yaml.safe_load(default_rules_path().read_text())
    rules["alerts"] = {
        "webhooks": [{"name": "finops-hook", "url_env": "FINOPS_TEST_WEBHOOK_URL"}],
        "email": [
            {
                "name": "finops-mail",
                "smtp_host": "127.0.0.1",
                "smtp_port": mailbox.port,
                "starttls": False,
                "sender": "dagster@example.com",
                "recipients": ["finops@example.com"],
            }
        ],
    }
    rules["owners"] = {
        "payments": {
            "alert_recipients": ["payments-lead@example.com"],
            "alert_webhook_env": "PAYMENTS_WEBHOOK_URL",
        },
        "search": {},
    }
    # Payments spends about 37,000 USD in May (26,000 by the 20th): 36,000 is forecast to be
    # exceeded, 50% of it is spent.
    rules["budgets"] = [
        {
            "name": "payments-monthly",
            "scope": {"team": "payments"},
            "amount": 36000,
            "currency": "USD",
            "owner": "payments",
        },
        {"name": "search-eur", "scope": {"team": "search"}, "amount": 100000, "currency": "EUR"},
    ]
    config = tmp_path / "rules.yaml"
    config.write_text(yaml.safe_dump(rules))

    with dg.instance_for_test() as instance:
        _, cursor = tick(instance, str(config), None)
        result = materialize(
            path,
            tmp_path,
            instance,
            LAST,
            LAST,
            assets=("insights/anomalies", "insights/budget_status"),
            config=str(config),
        )
        assert result.success
        evaluations = checks(result)
        budget = evaluations["budget_thresholds"]
        assert not budget.passed and budget.severity == dg.AssetCheckSeverity.ERROR
        assert "Budget payments-monthly (team=payments" in budget.description
        assert "forecast crossed 100%" in budget.description
        assert "Owner: payments." in budget.description
        assert "search-eur" not in budget.description  # 15,000 EUR of 100,000: nothing crossed
        assert not evaluations["new_anomalies"].passed

        reason, cursor = tick(instance, str(config), cursor)
        # Two alerts: each to both FinOps targets, and to the payments owner's webhook and mail
        # (the anomaly is on payments' series, the budget is theirs).
        assert reason == "2 alert(s): 8 delivered, 0 delivery error(s)."
        finops = {b["check_name"]: b for b in webhook.bodies()}
        owner = {b["check_name"]: b for b in webhook.bodies(OWNER_PATH)}
        assert set(finops) == set(owner) == {"new_anomalies", "budget_thresholds"}
        assert owner["budget_thresholds"]["owners"] == ["payments"]
        assert "payments-monthly" in owner["budget_thresholds"]["text"]
        recipients = sorted(m["To"] for m in mailbox.messages)
        assert recipients == [
            "finops@example.com",
            "finops@example.com",
            "payments-lead@example.com",
            "payments-lead@example.com",
        ]

        # The next day's run: no threshold is crossed again, no anomaly is new: nothing sent.
        again = materialize(
            path,
            tmp_path,
            instance,
            LAST,
            LAST,
            assets=("insights/anomalies", "insights/budget_status"),
            config=str(config),
        )
        assert all(e.passed for e in checks(again).values())
        reason, cursor = tick(instance, str(config), cursor)
        assert len(webhook.bodies()) == 2 and len(mailbox.messages) == 4

    with duckdb.connect(path, read_only=True) as con:
        status = dict(
            con.execute(
                "SELECT budget, status FROM insights.budget_status WHERE charge_date = ?", [LAST]
            ).fetchall()
        )
    assert status == {"payments-monthly": "at risk", "search-eur": "on track"}
