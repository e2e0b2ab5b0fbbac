"""The AWS Invoicing API client finance/invoices reads invoice summaries with.

Credentials come from the standard AWS chain (environment, profile, instance role), never from
code; the API is global and answers in us-east-1. Tests pass an object with the same ``client``
method returning a client with a botocore Stubber attached.
"""

from __future__ import annotations

from typing import Any

import boto3
import dagster as dg


class AwsInvoicingResource(dg.ConfigurableResource):
    region_name: str = "us-east-1"

    def client(self) -> Any:
        return boto3.client("invoicing", region_name=self.region_name)
