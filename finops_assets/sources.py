"""SOURCES: the one list of billing sources. Every other list of sources derives from it.

A source is one raw table (``raw/<name>``) fed by one provider folder
``finops_assets/defs/sources/<provider>/`` holding everything about that provider: its landing
layouts and manifests (``deliveries.py``), its mapping to FOCUS (the module named ``mapping``,
which defines ``FACT_SOURCE``), its asset (``assets.py``), contract (``checks.py``) and delivery
sensors (``sensors.py``). Freshness keys, landing roots and their ``FINOPS_LANDING_URL_<ROOT>``
variables, the ``core/cost_facts`` inputs and the ``sample-data --sources`` choices are read from
here. Adding a provider is one folder and one line below (README, "Adding a source").

This module imports nothing of the package, so settings, rules and the CLI can all read it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SourceSpec:
    name: str  # raw asset raw/<name>, table raw.<name>, freshness key, x_Source in core.cost_facts
    provider: str  # folder under finops_assets/defs/sources/
    title: str  # what a FinOps analyst calls it
    landing_roots: tuple[str, ...]  # top-level folders of the landing zone it reads
    mapping: str  # module in the provider folder defining FACT_SOURCE (raw -> FOCUS)
    default_sla_hours: float  # freshness.<name>.sla_hours when the rules YAML says nothing
    samples: tuple[str, ...] = ()  # `finops-assets sample-data --sources` names it writes
    default_samples: tuple[str, ...] = ()  # the ones written when --sources is not given

    @property
    def raw_key(self) -> str:
        return f"raw/{self.name}"

    @property
    def raw_table(self) -> str:
        return f"raw.{self.name}"

    @property
    def package(self) -> str:
        return f"finops_assets.defs.sources.{self.provider}"

    def module(self, name: str) -> Any:
        return importlib.import_module(f"{self.package}.{name}")

    @property
    def fact_source(self) -> Any:
        """The ``lib.facts.FactSource`` mapping this raw table into core.cost_facts."""
        return self.module(self.mapping).FACT_SOURCE


SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec(
        name="focus",
        provider="focus",
        title="FOCUS exports from any producer",
        landing_roots=("focus",),
        mapping="load",
        default_sla_hours=24,
        samples=("focus",),
        default_samples=("focus",),
    ),
    SourceSpec(
        name="aws_cur",
        provider="aws",
        title="AWS Cost and Usage Report (legacy CUR and Data Exports)",
        landing_roots=("aws-cur", "aws-data-exports"),
        mapping="cur",
        default_sla_hours=48,
        samples=("aws-cur", "aws-exports"),
        default_samples=("aws-cur",),
    ),
    SourceSpec(
        name="azure_cost",
        provider="azure",
        title="Azure Cost Management exports",
        landing_roots=("azure",),
        mapping="cost_details",
        default_sla_hours=24,
        samples=("azure",),
        default_samples=("azure",),
    ),
    SourceSpec(
        name="gcp_billing",
        provider="gcp",
        title="Google Cloud Billing export",
        landing_roots=("gcp",),
        mapping="billing_export",
        default_sla_hours=24,
        samples=("gcp",),
        default_samples=("gcp",),
    ),
)

SOURCE_NAMES: tuple[str, ...] = tuple(s.name for s in SOURCES)
LANDING_ROOTS: tuple[str, ...] = tuple(root for s in SOURCES for root in s.landing_roots)
SAMPLE_SOURCES: tuple[str, ...] = tuple(n for s in SOURCES for n in s.samples)
DEFAULT_SAMPLE_SOURCES: tuple[str, ...] = tuple(n for s in SOURCES for n in s.default_samples)


def source(name: str) -> SourceSpec:
    for spec in SOURCES:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown source {name!r}; sources are {', '.join(SOURCE_NAMES)}")
