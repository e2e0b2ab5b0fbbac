"""ListInvoiceSummaries through a real boto3 client under botocore's Stubber: paging, retries,
actionable errors and the conversion to invoice rows. Every expected figure is worked by hand;
no test sleeps (tenacity.wait_none) or reads the clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import boto3
import pytest
import tenacity
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from finops_assets.lib.aws_invoicing import (
    fetch_aws_invoices,
    fetch_invoice_summaries,
    invoice_rows,
    skipped_receipts,
)
from finops_assets.lib.invoices import InvoiceInputError, InvoiceRow, invoice_table

PAYER = "123456789012"
MEMBER = "210987654321"
MARCH = date(2025, 3, 1)
SOURCE = f"aws-invoicing:ListInvoiceSummaries account {PAYER} 2025-03"
NO_WAIT = tenacity.wait_none()


@pytest.fixture
def client():
    return boto3.client(
        "invoicing",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def params(account: str = PAYER, token: str | None = None, page_size: int = 100) -> dict:
    request = {
        "Selector": {"ResourceType": "ACCOUNT_ID", "Value": account},
        "Filter": {"BillingPeriod": {"Month": 3, "Year": 2025}},
        "MaxResults": page_size,
    }
    if token:
        request["NextToken"] = token
    return request


def summary(
    invoice_id: str,
    *,
    kind: str = "INVOICE",
    before_tax: str,
    total: str,
    tax: str | None = None,
    account: str = PAYER,
    month: int = 3,
    issued: datetime | None = None,
    due: datetime | None = None,
    original: str | None = None,
    status: str = "ISSUED",
) -> dict:
    breakdown: dict = {"SubTotalAmount": before_tax}
    if tax is not None:
        breakdown["Taxes"] = {
            "Breakdown": [{"Description": "VAT", "Amount": tax, "Rate": "20"}],
            "TotalAmount": tax,
        }
    item = {
        "AccountId": account,
        "InvoiceId": invoice_id,
        "IssuedDate": issued or datetime(2025, 4, 2, 8, 0, tzinfo=UTC),
        "DueDate": due or datetime(2025, 5, 2, 8, 0, tzinfo=UTC),
        "BillingPeriod": {"Month": month, "Year": 2025},
        "InvoiceType": kind,
        "TaxAuthorityStatus": status,
        "Entity": {"InvoicingEntity": "Amazon Web Services EMEA SARL", "BillingEntity": "AWS"},
        "BaseCurrencyAmount": {
            "TotalAmount": total,
            "TotalAmountBeforeTax": before_tax,
            "CurrencyCode": "EUR",
            "AmountBreakdown": breakdown,
        },
    }
    if original:
        item["OriginalInvoiceId"] = original
    return item


# Invoice: 1234.56 + 246.91 VAT = 1481.47. Issued 23:30 on 1 April at UTC-5, i.e. 2 April UTC.
INVOICE = summary(
    "EUINGB25-0001",
    before_tax="1234.56",
    tax="246.91",
    total="1481.47",
    issued=datetime(2025, 4, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
)
RECEIPT = summary("PR-25-0001", kind="PAYMENT_RECEIPT", before_tax="1481.47", total="1481.47")
# Marketplace invoice without a tax breakdown: tax = 59.50 - 50.00 = 9.50; cancelled -> voided.
MARKETPLACE = summary("EUINGB25-0002", before_tax="50.00", total="59.50", status="CANCELLED")
# Credit memo AWS reports as positive magnitudes: 100.00 + 20.00 = 120.00, stored negated.
CREDIT_MEMO = summary(
    "EUCNGB25-0003",
    kind="CREDIT_MEMO",
    before_tax="100.00",
    tax="20.00",
    total="120.00",
    original="EUINGB25-0001",
    issued=datetime(2025, 4, 10, 9, 15, tzinfo=UTC),
    due=datetime(2025, 4, 10, 9, 15, tzinfo=UTC),
)


def row(**overrides) -> InvoiceRow:
    values = {
        "ProviderName": "AWS",
        "BillingAccountId": PAYER,
        "billing_period": date(2025, 3, 1),
        "InvoiceId": "EUINGB25-0001",
        "invoice_type": "invoice",
        "original_invoice_id": None,
        "status": "issued",
        "BillingCurrency": "EUR",
        "pre_tax_amount": Decimal("1234.56"),
        "tax_amount": Decimal("246.91"),
        "total_amount": Decimal("1481.47"),
        "issue_date": date(2025, 4, 2),
        "due_date": date(2025, 5, 2),
        "line_count": None,
        "source": "aws_invoicing_api",
        "x_SourceFile": SOURCE,
    }
    return InvoiceRow(**{**values, **overrides})


EXPECTED_ROWS = [
    row(),
    row(
        InvoiceId="EUINGB25-0002",
        status="voided",
        pre_tax_amount=Decimal("50.00"),
        tax_amount=Decimal("9.50"),
        total_amount=Decimal("59.50"),
    ),
    row(
        InvoiceId="EUCNGB25-0003",
        invoice_type="credit_memo",
        original_invoice_id="EUINGB25-0001",
        pre_tax_amount=Decimal("-100.00"),
        tax_amount=Decimal("-20.00"),
        total_amount=Decimal("-120.00"),
        issue_date=date(2025, 4, 10),
        due_date=date(2025, 4, 10),
    ),
]


def test_two_pages_with_a_throttle_between_them(client):
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_invoice_summaries",
            {"InvoiceSummaries": [INVOICE, RECEIPT], "NextToken": "page-2"},
            expected_params=params(page_size=2),
        )
        stubber.add_client_error(
            "list_invoice_summaries",
            service_error_code="ThrottlingException",
            service_message="Rate exceeded",
            http_status_code=400,
            expected_params=params(token="page-2", page_size=2),
        )
        stubber.add_response(
            "list_invoice_summaries",
            {"InvoiceSummaries": [MARKETPLACE, CREDIT_MEMO]},
            expected_params=params(token="page-2", page_size=2),
        )
        summaries = fetch_invoice_summaries(client, PAYER, MARCH, page_size=2, wait=NO_WAIT)
        stubber.assert_no_pending_responses()

    assert [s["InvoiceId"] for s in summaries] == [
        "EUINGB25-0001",
        "PR-25-0001",
        "EUINGB25-0002",
        "EUCNGB25-0003",
    ]
    assert skipped_receipts(summaries) == 1
    assert invoice_rows(summaries, PAYER, MARCH) == EXPECTED_ROWS


def test_rows_fit_the_invoice_schema():
    table = invoice_table(invoice_rows([INVOICE, MARKETPLACE, CREDIT_MEMO], PAYER, MARCH))
    assert table.column("total_amount").to_pylist() == [
        Decimal("1481.470000000000"),
        Decimal("59.500000000000"),
        Decimal("-120.000000000000"),
    ]
    assert table.column("tax_amount").to_pylist() == [
        Decimal("246.910000000000"),
        Decimal("9.500000000000"),
        Decimal("-20.000000000000"),
    ]


def test_credit_memo_already_negative_keeps_its_sign():
    memo = summary(
        "EUCNGB25-0004",
        kind="CREDIT_MEMO",
        before_tax="-10.00",
        tax="-2.00",
        total="-12.00",
        original="EUINGB25-0001",
    )
    [converted] = invoice_rows([memo], PAYER, MARCH)
    assert (converted.pre_tax_amount, converted.tax_amount, converted.total_amount) == (
        Decimal("-10.00"),
        Decimal("-2.00"),
        Decimal("-12.00"),
    )


def test_credit_memo_with_mixed_signs_raises():
    memo = summary(
        "EUCNGB25-0005",
        kind="CREDIT_MEMO",
        before_tax="-10.00",
        tax="2.00",
        total="-8.00",
        original="EUINGB25-0001",
    )
    with pytest.raises(InvoiceInputError) as error:
        invoice_rows([memo], PAYER, MARCH)
    assert str(error.value) == (
        f"{SOURCE}: invoice EUCNGB25-0005 is a credit memo with mixed signs (pre-tax -10.00, "
        "tax 2.00, total -8.00); its amounts cannot be read as a reduction."
    )


def test_credit_memo_without_original_invoice_raises():
    memo = summary("EUCNGB25-0006", kind="CREDIT_MEMO", before_tax="5.00", total="5.00")
    with pytest.raises(InvoiceInputError) as error:
        invoice_rows([memo], PAYER, MARCH)
    assert str(error.value) == (
        f"{SOURCE}: invoice EUCNGB25-0006 is a credit memo without OriginalInvoiceId; the "
        "invoice it corrects is needed to reconcile it."
    )


def test_tax_that_does_not_add_up_raises():
    wrong = summary("EUINGB25-0007", before_tax="100.00", tax="20.00", total="120.01")
    with pytest.raises(InvoiceInputError) as error:
        invoice_rows([wrong], PAYER, MARCH)
    assert str(error.value) == (
        f"{SOURCE}: invoice EUINGB25-0007: TotalAmountBeforeTax 100.00 + Taxes.TotalAmount "
        "20.00 = 120.00, not TotalAmount 120.01; AWS's figures disagree, check the invoice in "
        "the Billing console before loading it."
    )


def test_access_denied_says_what_to_grant(client):
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "list_invoice_summaries",
            service_error_code="AccessDeniedException",
            service_message="User is not authorized to perform: invoicing:ListInvoiceSummaries",
            http_status_code=403,
            expected_params=params(),
        )
        with pytest.raises(InvoiceInputError) as error:
            fetch_invoice_summaries(client, PAYER, MARCH, wait=NO_WAIT)
        stubber.assert_no_pending_responses()
    assert str(error.value) == (
        "AWS denied invoicing:ListInvoiceSummaries for account 123456789012, billing period "
        "2025-03 (AccessDeniedException: User is not authorized to perform: "
        "invoicing:ListInvoiceSummaries). Grant the IAM action invoicing:ListInvoiceSummaries to "
        "the role the pipeline runs as; the Invoicing API is served from us-east-1 only (create "
        "the client with region_name='us-east-1') and must be called with credentials of the "
        "management (payer) account of the AWS Organization that is billed for 123456789012."
    )
    assert isinstance(error.value.__cause__, ClientError)


def test_validation_error_carries_aws_message(client):
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "list_invoice_summaries",
            service_error_code="ValidationException",
            service_message="Invalid account id",
            http_status_code=400,
            expected_params=params(account="12345"),
        )
        with pytest.raises(InvoiceInputError) as error:
            fetch_invoice_summaries(client, "12345", MARCH, wait=NO_WAIT)
        stubber.assert_no_pending_responses()
    assert str(error.value) == (
        "AWS rejected ListInvoiceSummaries for account 12345, billing period 2025-03: Invalid "
        "account id. Check that 12345 is a 12-digit AWS account id and that the billing period "
        "is a month AWS has invoiced."
    )


def test_more_throttles_than_attempts_reraise_the_last(client):
    with Stubber(client) as stubber:
        for attempt in range(3):
            stubber.add_client_error(
                "list_invoice_summaries",
                service_error_code="ThrottlingException",
                service_message=f"Rate exceeded ({attempt + 1})",
                http_status_code=400,
                expected_params=params(),
            )
        with pytest.raises(ClientError) as error:
            fetch_invoice_summaries(client, PAYER, MARCH, wait=NO_WAIT, max_attempts=3)
        stubber.assert_no_pending_responses()
    assert error.value.response["Error"]["Code"] == "ThrottlingException"
    assert error.value.response["Error"]["Message"] == "Rate exceeded (3)"


def test_summaries_of_another_month_are_dropped(client):
    february = summary("EUINGB25-0099", before_tax="1.00", total="1.00", month=2)
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_invoice_summaries",
            {"InvoiceSummaries": [february, INVOICE]},
            expected_params=params(),
        )
        summaries = fetch_invoice_summaries(client, PAYER, MARCH, wait=NO_WAIT)
        stubber.assert_no_pending_responses()
    assert [s["InvoiceId"] for s in summaries] == ["EUINGB25-0001"]


def test_client_outside_us_east_1_is_refused_before_any_call():
    frankfurt = boto3.client(
        "invoicing",
        region_name="eu-central-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(frankfurt) as stubber:
        with pytest.raises(InvoiceInputError) as error:
            fetch_invoice_summaries(frankfurt, PAYER, MARCH, wait=NO_WAIT)
        stubber.assert_no_pending_responses()
    assert str(error.value) == (
        "The Invoicing API client for account 123456789012 is in region eu-central-1; the API "
        "is served from us-east-1 only: create it with region_name='us-east-1'."
    )


def test_invoice_seen_under_two_accounts_is_kept_once(client):
    member_invoice = summary("EUINGB25-0010", before_tax="10.00", tax="2.00", total="12.00")
    member_invoice["AccountId"] = MEMBER
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_invoice_summaries", {"InvoiceSummaries": [INVOICE]}, expected_params=params()
        )
        stubber.add_response(
            "list_invoice_summaries",
            {"InvoiceSummaries": [INVOICE, member_invoice, RECEIPT]},
            expected_params=params(account=MEMBER),
        )
        rows = fetch_aws_invoices(client, [PAYER, MEMBER], MARCH, wait=NO_WAIT)
        stubber.assert_no_pending_responses()
    assert rows == [
        row(),
        row(
            BillingAccountId=MEMBER,
            InvoiceId="EUINGB25-0010",
            pre_tax_amount=Decimal("10.00"),
            tax_amount=Decimal("2.00"),
            total_amount=Decimal("12.00"),
            x_SourceFile=f"aws-invoicing:ListInvoiceSummaries account {MEMBER} 2025-03",
        ),
    ]


def test_invoice_with_two_totals_under_two_accounts_raises(client):
    changed = summary("EUINGB25-0001", before_tax="1234.56", tax="246.91", total="1481.47")
    changed["BaseCurrencyAmount"]["CurrencyCode"] = "USD"
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_invoice_summaries", {"InvoiceSummaries": [INVOICE]}, expected_params=params()
        )
        stubber.add_response(
            "list_invoice_summaries",
            {"InvoiceSummaries": [changed]},
            expected_params=params(account=MEMBER),
        )
        with pytest.raises(InvoiceInputError) as error:
            fetch_aws_invoices(client, [PAYER, MEMBER], MARCH, wait=NO_WAIT)
        stubber.assert_no_pending_responses()
    assert str(error.value) == (
        f"AWS invoice EUINGB25-0001 differs between {SOURCE} (invoice 1481.47 EUR) and "
        f"aws-invoicing:ListInvoiceSummaries account {MEMBER} 2025-03 (invoice 1481.47 USD); "
        "one invoice cannot have two totals."
    )
