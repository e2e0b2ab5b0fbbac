"""AWS invoice totals read through the AWS Invoicing API (``ListInvoiceSummaries``).

What belongs here: the paged, retried call to ``invoicing:ListInvoiceSummaries`` for one account
and billing month, and the conversion of its summaries to ``InvoiceRow`` of ``lib/invoices`` (one
row per invoice or credit memo, ``source = 'aws_invoicing_api'``). Nothing here imports Dagster;
the asset passes in a boto3 client, so tests hand over a real client wrapped in
``botocore.stub.Stubber``.

Why tenacity rather than botocore's retry config: a retry configured on the client
(``Config(retries=...)``) runs inside botocore's HTTP layer, which a ``Stubber`` never reaches
(stubbed errors are raised at once), so it could not be tested; and it stops at the HTTP request,
while what must survive a throttle is the whole page call, resumed at the same ``NextToken``
instead of restarting the listing. An explicit tenacity retry around each page covers both, with
exponential backoff and full jitter so parallel partitions do not throttle in step. A client may
keep botocore's own retries; this retry is the one that is specified and tested.

The Invoicing API is served from us-east-1 only and answers for the invoices of the management
(payer) account of an AWS Organization; errors that retrying cannot fix become
``InvoiceInputError`` with a message that says what to change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from finops_assets.lib.invoices import InvoiceInputError, InvoiceRow

logger = logging.getLogger(__name__)

INVOICING_REGION = "us-east-1"
SOURCE = "aws_invoicing_api"
PROVIDER = "AWS"
MAX_PAGE_SIZE = 100  # the API's limit for MaxResults

# Error codes that say "try again later": throttles under the account's request quota and the
# service's own transient failures. Everything else is answered the same way on every attempt.
RETRYABLE_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "Throttling",
        "ServiceUnavailable",
        "InternalServerException",
    }
)
# Network failures before or while reading a response; the next attempt may well get through.
RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
)
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})

# InvoiceType of the API -> invoice_type of INVOICE_SCHEMA. PAYMENT_RECEIPT is not a bill.
INVOICE_TYPES = {"INVOICE": "invoice", "CREDIT_MEMO": "credit_memo"}
PAYMENT_RECEIPT = "PAYMENT_RECEIPT"


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", "")).strip()


def is_retryable(error: BaseException) -> bool:
    """True for throttling and transient service or network errors, which a later attempt of the
    same call can get past; False for errors that every attempt would repeat."""
    if isinstance(error, ClientError):
        return _error_code(error) in RETRYABLE_ERROR_CODES
    return isinstance(error, RETRYABLE_EXCEPTIONS)


def _month(period: date) -> str:
    return f"{period.year:04d}-{period.month:02d}"


def _source_file(account_id: str, period: date) -> str:
    return f"aws-invoicing:ListInvoiceSummaries account {account_id} {_month(period)}"


def _actionable(error: ClientError, account_id: str, period: date) -> InvoiceInputError:
    """An error retrying cannot fix, as a message that tells a person what to change."""
    code, message = _error_code(error), _error_message(error)
    where = f"account {account_id}, billing period {_month(period)}"
    if code in ACCESS_DENIED_CODES:
        return InvoiceInputError(
            f"AWS denied invoicing:ListInvoiceSummaries for {where} ({code}: {message}). Grant the "
            "IAM action invoicing:ListInvoiceSummaries to the role the pipeline runs as; the "
            f"Invoicing API is served from {INVOICING_REGION} only (create the client with "
            f"region_name='{INVOICING_REGION}') and must be called with credentials of the "
            f"management (payer) account of the AWS Organization that is billed for {account_id}."
        )
    if code == "ValidationException":
        return InvoiceInputError(
            f"AWS rejected ListInvoiceSummaries for {where}: {message}. Check that {account_id} "
            "is a 12-digit AWS account id and that the billing period is a month AWS has invoiced."
        )
    if code == "ResourceNotFoundException":
        return InvoiceInputError(
            f"AWS found no invoicing data for {where}: {message}. Check that {account_id} is the "
            "management (payer) account, or an account of its organization."
        )
    return InvoiceInputError(
        f"ListInvoiceSummaries failed for {where} with {code or type(error).__name__}: {message}."
    )


def _in_period(summary: Mapping, period: date) -> bool:
    billing_period = summary.get("BillingPeriod") or {}
    return billing_period.get("Year") == period.year and billing_period.get("Month") == period.month


def fetch_invoice_summaries(
    client: Any,
    account_id: str,
    period: date,
    *,
    page_size: int = MAX_PAGE_SIZE,
    wait: Callable | None = None,
    max_attempts: int = 8,
) -> list[dict]:
    """All invoice summaries of ``account_id`` for the billing month of ``period``.

    Follows ``NextToken`` until AWS returns none. Each page call is retried on throttling and
    transient errors (``is_retryable``) up to ``max_attempts`` times, waiting ``wait`` between
    attempts (exponential backoff with full jitter by default; tests pass
    ``tenacity.wait_none()``); after the last attempt the last error is raised as it came.
    Other AWS errors become ``InvoiceInputError`` saying what to fix. Summaries of another
    billing month are dropped, in case AWS widens the filter.
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
    meta = getattr(client, "meta", None)
    region = getattr(meta, "region_name", None)
    if getattr(meta, "partition", None) == "aws" and region != INVOICING_REGION:
        # In the commercial partition only us-east-1 serves the API: fail now rather than retry
        # a dead endpoint for minutes. Other partitions (aws-cn, GovCloud) are left to the caller.
        raise InvoiceInputError(
            f"The Invoicing API client for account {account_id} is in region {region}; the API is "
            f"served from {INVOICING_REGION} only: create it with region_name='{INVOICING_REGION}'."
        )
    retrying = Retrying(
        retry=retry_if_exception(is_retryable),
        stop=stop_after_attempt(max_attempts),
        wait=wait if wait is not None else wait_random_exponential(multiplier=1, max=30),
        before_sleep=before_sleep_log(logger, logging.WARNING),
        reraise=True,
    )
    request: dict[str, Any] = {
        "Selector": {"ResourceType": "ACCOUNT_ID", "Value": account_id},
        "Filter": {"BillingPeriod": {"Month": period.month, "Year": period.year}},
        "MaxResults": page_size,
    }
    summaries: list[dict] = []
    seen_tokens: set[str] = set()
    token: str | None = None
    while True:
        page_request = {**request, "NextToken": token} if token else request
        try:
            response = retrying(client.list_invoice_summaries, **page_request)
        except ClientError as error:
            if is_retryable(error):
                raise
            raise _actionable(error, account_id, period) from error
        summaries.extend(s for s in response.get("InvoiceSummaries", []) if _in_period(s, period))
        token = response.get("NextToken")
        if not token:
            return summaries
        if token in seen_tokens:
            # A repeated token would page forever; better to stop and say so.
            raise InvoiceInputError(
                f"ListInvoiceSummaries for account {account_id}, billing period {_month(period)} "
                f"returned NextToken {token!r} twice; the listing cannot be completed."
            )
        seen_tokens.add(token)


def _money(value: Any, invoice_id: str, field: str) -> Decimal | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise InvoiceInputError(
            f"AWS invoice {invoice_id}: {field} {value!r} is not a number."
        ) from None


def _utc_date(value: Any) -> date | None:
    """The UTC calendar date of an API timestamp. botocore parses timestamps to aware datetimes
    in the machine's local zone, so the date is taken after converting to UTC; a naive value is
    read as UTC already."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.date()
    if isinstance(value, date):
        return value
    raise InvoiceInputError(f"{value!r} is not a timestamp")


def _negated(value: Decimal) -> Decimal:
    return Decimal(0) - value  # not -value: keeps a zero as +0


def skipped_receipts(summaries: Iterable[Mapping]) -> int:
    """How many summaries are payment receipts, which ``invoice_rows`` leaves out: a receipt
    records a payment, not an amount owed, so it is not an invoice row."""
    return sum(1 for s in summaries if s.get("InvoiceType") == PAYMENT_RECEIPT)


def invoice_rows(summaries: list[dict], account_id: str, period: date) -> list[InvoiceRow]:
    """Invoice summaries of ``account_id`` for the month of ``period`` as invoice rows.

    INVOICE and CREDIT_MEMO summaries become rows; PAYMENT_RECEIPT summaries are skipped (count
    them with ``skipped_receipts``). Amounts are the base-currency figures: pre-tax is
    TotalAmountBeforeTax, total is TotalAmount, tax is AmountBreakdown.Taxes.TotalAmount, or
    total − pre-tax when AWS gives no tax breakdown; when all three are given they must add up.
    A summary AWS has cancelled with the tax authority is ``voided``; any other is ``issued``,
    since the API lists an invoice only once it is issued.

    Sign of credit memos: a credit memo reduces what is owed, so its row carries amounts ≤ 0,
    as ``INVOICE_SCHEMA`` and the other readers do. AWS's sign is kept when its figures are
    already ≤ 0; when AWS reports them as positive magnitudes, all three are negated together
    (so pre-tax + tax = total still holds). A credit memo with both positive and negative
    figures is ambiguous and raises ``InvoiceInputError``.
    """
    billing_period = date(period.year, period.month, 1)
    source_file = _source_file(account_id, period)
    rows: list[InvoiceRow] = []
    for summary in summaries:
        kind = summary.get("InvoiceType")
        if kind == PAYMENT_RECEIPT:
            continue
        invoice_id = summary.get("InvoiceId")
        if not invoice_id:
            raise InvoiceInputError(
                f"{source_file}: a summary has no InvoiceId; it cannot be told apart from others."
            )
        where = f"{source_file}: invoice {invoice_id}"
        if kind not in INVOICE_TYPES:
            raise InvoiceInputError(
                f"{where} has InvoiceType {kind!r}; expected INVOICE, CREDIT_MEMO or "
                "PAYMENT_RECEIPT. Extend INVOICE_TYPES in lib/aws_invoicing if AWS added a type."
            )
        if summary.get("BillingPeriod") and not _in_period(summary, period):
            found = summary["BillingPeriod"]
            raise InvoiceInputError(
                f"{where} is for billing period {found.get('Year')}-{found.get('Month')} "
                f"(year-month), not {_month(period)}."
            )
        base = summary.get("BaseCurrencyAmount") or {}
        currency = str(base.get("CurrencyCode") or "").strip().upper()
        if not currency:
            raise InvoiceInputError(f"{where} has no BaseCurrencyAmount.CurrencyCode.")
        pre_tax = _money(base.get("TotalAmountBeforeTax"), invoice_id, "TotalAmountBeforeTax")
        total = _money(base.get("TotalAmount"), invoice_id, "TotalAmount")
        if pre_tax is None or total is None:
            raise InvoiceInputError(
                f"{where} lacks BaseCurrencyAmount.TotalAmountBeforeTax or .TotalAmount "
                f"(got {pre_tax} and {total}); both are needed for the invoice totals."
            )
        taxes = (base.get("AmountBreakdown") or {}).get("Taxes") or {}
        tax = _money(taxes.get("TotalAmount"), invoice_id, "AmountBreakdown.Taxes.TotalAmount")
        if tax is None:
            tax = total - pre_tax
        elif pre_tax + tax != total:
            raise InvoiceInputError(
                f"{where}: TotalAmountBeforeTax {pre_tax} + Taxes.TotalAmount {tax} = "
                f"{pre_tax + tax}, not TotalAmount {total}; AWS's figures disagree, check the "
                "invoice in the Billing console before loading it."
            )
        original = summary.get("OriginalInvoiceId") or None
        invoice_type = INVOICE_TYPES[kind]
        if invoice_type == "credit_memo":
            if not original:
                raise InvoiceInputError(
                    f"{where} is a credit memo without OriginalInvoiceId; the invoice it corrects "
                    "is needed to reconcile it."
                )
            figures = (pre_tax, tax, total)
            if all(f >= 0 for f in figures):
                pre_tax, tax, total = (_negated(f) for f in figures)
            elif not all(f <= 0 for f in figures):
                raise InvoiceInputError(
                    f"{where} is a credit memo with mixed signs (pre-tax {pre_tax}, tax {tax}, "
                    f"total {total}); its amounts cannot be read as a reduction."
                )
        rows.append(
            InvoiceRow(
                ProviderName=PROVIDER,
                BillingAccountId=str(summary.get("AccountId") or account_id),
                billing_period=billing_period,
                InvoiceId=str(invoice_id),
                invoice_type=invoice_type,
                original_invoice_id=original,
                status="voided" if summary.get("TaxAuthorityStatus") == "CANCELLED" else "issued",
                BillingCurrency=currency,
                pre_tax_amount=pre_tax,
                tax_amount=tax,
                total_amount=total,
                issue_date=_utc_date(summary.get("IssuedDate")),
                due_date=_utc_date(summary.get("DueDate")),
                line_count=None,
                source=SOURCE,
                x_SourceFile=source_file,
            )
        )
    return rows


def fetch_aws_invoices(
    client: Any, account_ids: Iterable[str], period: date, **kw: Any
) -> list[InvoiceRow]:
    """Invoice rows of every account in ``account_ids`` for the month of ``period``.

    ``kw`` goes to ``fetch_invoice_summaries``. An invoice listed under several accounts (a
    payer and its member accounts can both see it) is kept once, as first seen; if the copies
    disagree on type, currency or amounts, that is an error rather than a silent choice.
    """
    rows: list[InvoiceRow] = []
    seen: dict[str, InvoiceRow] = {}
    for account_id in dict.fromkeys(account_ids):
        summaries = fetch_invoice_summaries(client, account_id, period, **kw)
        receipts = skipped_receipts(summaries)
        if receipts:
            logger.info(
                "account %s %s: skipped %d payment receipt(s)", account_id, _month(period), receipts
            )
        for row in invoice_rows(summaries, account_id, period):
            first = seen.get(row.InvoiceId)
            if first is None:
                seen[row.InvoiceId] = row
                rows.append(row)
                continue
            same = (
                first.invoice_type,
                first.BillingCurrency,
                first.pre_tax_amount,
                first.tax_amount,
                first.total_amount,
            ) == (
                row.invoice_type,
                row.BillingCurrency,
                row.pre_tax_amount,
                row.tax_amount,
                row.total_amount,
            )
            if not same:
                raise InvoiceInputError(
                    f"AWS invoice {row.InvoiceId} differs between {first.x_SourceFile} "
                    f"({first.invoice_type} {first.total_amount} {first.BillingCurrency}) and "
                    f"{row.x_SourceFile} ({row.invoice_type} {row.total_amount} "
                    f"{row.BillingCurrency}); one invoice cannot have two totals."
                )
    return rows
