"""finance/invoices → finance/invoice_reconciliation on the real anonymized legacy CUR, invoiced
(``bill/InvoiceId`` set on every row, as AWS does once the bill is final), against invoice
summaries served by a botocore Stubber the way ListInvoiceSummaries pages them."""

from datetime import UTC, datetime
from decimal import Decimal

import boto3
import dagster as dg
import pytest
from botocore.stub import Stubber

from finops_assets.definitions import build_defs
from finops_assets.lib.rules import default_rules_path
from finops_assets.settings import Settings
from finops_assets_tests.conftest import failure_messages, load_once
from finops_assets_tests.sources.aws.test_assets import deliver_cur, edited_cur

INVOICE = "EUINGB23-1746326"
PAYER = "123412340534"
# The real CUR: Σ lineItem/UnblendedCost = 1.6823086974, of which Tax rows 0.08.
PRE_TAX = Decimal("1.6023086974")
TAX = Decimal("0.08")
FINANCE = dg.AssetKey(["finance", "invoice_reconciliation"])


def deliver_invoiced_cur(landing):
    def invoiced(row):
        row["bill/InvoiceId"] = INVOICE

    deliver_cur(landing, "assembly-1", edited_cur(invoiced), parts=2)


@pytest.fixture(scope="module")
def invoiced_once(tmp_path_factory):
    return load_once(
        tmp_path_factory.mktemp("invoiced"), deliver_invoiced_cur, "2023-11-01", "2023-11-30"
    )


@pytest.fixture
def invoiced(pipeline, invoiced_once, tmp_path):
    pipeline.restore(invoiced_once)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        default_rules_path().read_text()
        + f'\nfinance:\n  aws_invoicing:\n    accounts: ["{PAYER}"]\n'
    )
    pipeline.config_path = str(rules)
    return pipeline


def summary(invoice_id, kind, pre_tax, tax, month=11):
    total = pre_tax + tax
    return {
        "AccountId": PAYER,
        "InvoiceId": invoice_id,
        "IssuedDate": datetime(2023, 12, 2, 8, tzinfo=UTC),
        "DueDate": datetime(2024, 1, 1, tzinfo=UTC),
        "BillingPeriod": {"Month": month, "Year": 2023},
        "InvoiceType": kind,
        "BaseCurrencyAmount": {
            "TotalAmount": str(total),
            "TotalAmountBeforeTax": str(pre_tax),
            "CurrencyCode": "USD",
            "AmountBreakdown": {"SubTotalAmount": str(pre_tax), "Taxes": {"TotalAmount": str(tax)}},
        },
    }


class StubbedInvoicing:
    """The aws_invoicing resource with a Stubber-backed client: two pages, a throttle between."""

    def __init__(self, invoice_pre_tax: Decimal):
        self.api = boto3.client(
            "invoicing",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.stubber = Stubber(self.api)
        params = {
            "Selector": {"ResourceType": "ACCOUNT_ID", "Value": PAYER},
            "Filter": {"BillingPeriod": {"Month": 11, "Year": 2023}},
            "MaxResults": 100,
        }
        receipt = summary("RCPT-1", "PAYMENT_RECEIPT", Decimal("1.68"), Decimal(0))
        self.stubber.add_response(
            "list_invoice_summaries", {"InvoiceSummaries": [receipt], "NextToken": "p2"}, params
        )
        self.stubber.add_client_error(
            "list_invoice_summaries",
            service_error_code="ThrottlingException",
            http_status_code=400,
            expected_params={**params, "NextToken": "p2"},
        )
        invoice = summary(INVOICE, "INVOICE", invoice_pre_tax, Decimal("0.08"))
        self.stubber.add_response(
            "list_invoice_summaries", {"InvoiceSummaries": [invoice]}, {**params, "NextToken": "p2"}
        )
        self.stubber.activate()

    def client(self):
        return self.api


def close_books(pipeline, invoicing):
    defs = build_defs(
        Settings(
            landing_url=str(pipeline.landing),
            warehouse=pipeline.warehouse,
            start_date="2023-01-01",
            config_path=pipeline.config_path,
        ),
        resources={"aws_invoicing": invoicing},
    )
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=pipeline.instance,
        partition_key="2023-11-01",
        asset_selection=[dg.AssetKey(["finance", "invoices"]), FINANCE],
        raise_on_error=False,
    )


def reconciliation(pipeline):
    return pipeline.query(
        "SELECT InvoiceId, invoice_status, rows, facts_pre_tax, invoice_pre_tax, delta, "
        "facts_tax, invoice_tax, tolerance, status FROM finance.invoice_reconciliation"
    )


def test_invoiced_cur_matches_the_paged_invoice_summaries(invoiced):
    invoicing = StubbedInvoicing(Decimal("1.60"))
    result = close_books(invoicing=invoicing, pipeline=invoiced)
    assert result.success, failure_messages(result)
    invoicing.stubber.assert_no_pending_responses()
    assert invoiced.query(
        "SELECT InvoiceId, invoice_type, status, pre_tax_amount, tax_amount, total_amount, "
        "issue_date::VARCHAR, source FROM finance.invoices"
    ) == [
        (
            INVOICE,
            "invoice",
            "issued",
            Decimal("1.6"),
            Decimal("0.08"),
            Decimal("1.68"),
            "2023-12-02",
            "aws_invoicing_api",
        )
    ]
    # 1.6023086974 against 1.60: a 0.0023 gap rounds to no cent, so the status is "match";
    # 1,281 rows allow max(1.00, √1281 × 0.005) = 1.00 USD.
    assert reconciliation(invoiced) == [
        (
            INVOICE,
            "issued",
            1281,
            PRE_TAX,
            Decimal("1.6"),
            PRE_TAX - Decimal("1.6"),
            TAX,
            Decimal("0.08"),
            Decimal("1"),
            "match",
        )
    ]
    [check] = result.get_asset_check_evaluations()
    assert (check.asset_check_key.name, check.passed) == ("issued_invoices_match", True)


def test_an_issued_invoice_outside_tolerance_fails_the_check_naming_it(invoiced):
    invoicing = StubbedInvoicing(Decimal("6.60"))
    result = close_books(invoiced, invoicing)
    [check] = result.get_asset_check_evaluations()
    assert check.passed is False
    assert (
        f"invoice {INVOICE} (2023-11): cost data 1.60 vs invoice 6.60 USD before tax, delta "
        "-5.00 USD (tolerance 1.00; unexplained -5.00 USD)" in check.description
    )
    assert [row[-1] for row in reconciliation(invoiced)] == ["mismatch"]
