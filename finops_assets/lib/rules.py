"""The rules YAML: tag dimensions, loader settings, warehouse settings.

Validated when definitions load, so a typo fails fast with the file, line and fix instead of
producing a quietly wrong rollup.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

UNTAGGED = "__untagged__"
UNKNOWN = "__unknown__"


class RulesError(ValueError):
    pass


def normalize_tag_key(key: str) -> str:
    return key.strip().casefold()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dimension(_Strict):
    aliases: tuple[str, ...] = Field(min_length=1)
    missing: str = UNTAGGED
    values: dict[str, str] = Field(default_factory=dict)

    @field_validator("aliases")
    @classmethod
    def _normalize_aliases(cls, aliases: tuple[str, ...]) -> tuple[str, ...]:
        normalized = tuple(normalize_tag_key(a) for a in aliases)
        if any(not a for a in normalized):
            raise ValueError("an alias is empty; remove it or give the tag key")
        return normalized

    @field_validator("values")
    @classmethod
    def _normalize_values(cls, values: dict[str, str]) -> dict[str, str]:
        return {normalize_tag_key(k): v.strip().casefold() for k, v in values.items()}


class WarehouseSettings(_Strict):
    memory_limit: str = "1GB"
    threads: int = Field(default=2, ge=1)
    lock_timeout_seconds: float = Field(default=3600, gt=0)


class GcpRules(_Strict):
    """GCP billing export: PROMOTION credit policy and the optional BigQuery direct mode."""

    # discount: promotional credits reduce BilledCost/EffectiveCost like other credits;
    # payment: they are a means of paying the invoice and do not reduce cost.
    promotion_credits: Literal["discount", "payment"] = "discount"
    # project.dataset.gcp_billing_export[_resource]_v1_<account>: read BigQuery, not the landing.
    bigquery_table: str | None = None

    @field_validator("bigquery_table")
    @classmethod
    def _check_table(cls, table: str | None) -> str | None:
        from finops_assets.lib.gcp_billing import validate_bigquery_table

        return None if table is None else validate_bigquery_table(table)


class Rules(_Strict):
    dimensions: dict[str, Dimension]
    ownership_dimension: str = "team"
    correction_months: int = Field(default=1, ge=0, le=12)
    # Provider prefixes removed from tag keys before alias matching (AWS: "user:Team").
    tag_key_prefixes: tuple[str, ...] = ("user:",)
    warehouse: WarehouseSettings = WarehouseSettings()
    gcp: GcpRules = GcpRules()

    @model_validator(mode="after")
    def _check(self) -> Rules:
        required = {"department", "team", "environment", "cost_center"}
        missing = sorted(required - set(self.dimensions))
        if missing:
            raise ValueError(
                f"dimensions must define {', '.join(missing)} (the marts report them); "
                "add them with at least one alias each"
            )
        for name in self.dimensions:
            if not name.isidentifier() or name != name.lower():
                raise ValueError(
                    f"dimension name {name!r} must be a lower-case identifier (it becomes a column)"
                )
        seen: dict[str, str] = {}
        for name, dimension in self.dimensions.items():
            for alias in dimension.aliases:
                if alias in seen and seen[alias] != name:
                    raise ValueError(
                        f"tag alias {alias!r} is listed under both {seen[alias]!r} and {name!r}; "
                        "a tag key can feed only one dimension"
                    )
                seen[alias] = name
        if self.ownership_dimension not in self.dimensions:
            raise ValueError(
                f"ownership_dimension {self.ownership_dimension!r} is not a dimension; "
                f"use one of {sorted(self.dimensions)}"
            )
        return self


def default_rules_path() -> Path:
    return Path(str(resources.files("finops_assets") / "config" / "default.yaml"))


def _line_of(node: yaml.Node | None, location: tuple[Any, ...]) -> int | None:
    """Best-effort 1-based line of a pydantic error location in the YAML source."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
            if match is None:
                key = next((k for k, _ in node.value if k.value == str(part)), None)
                return key.start_mark.line + 1 if key is not None else line
            node = match
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def parse_rules(text: str, source: str = "<rules>") -> Rules:
    try:
        data = yaml.safe_load(text) or {}
        tree = yaml.compose(text)
    except yaml.YAMLError as error:
        raise RulesError(f"{source}: not valid YAML: {error}") from error
    try:
        return Rules.model_validate(data)
    except ValidationError as error:
        messages = []
        for problem in error.errors():
            location = tuple(problem["loc"])
            line = _line_of(tree, location)
            where = ".".join(str(p) for p in location) or "(top level)"
            message = problem["msg"].removeprefix("Value error, ")
            if problem["type"] == "extra_forbidden":
                message = "unknown key; check its spelling against the shipped default.yaml"
            messages.append(f"{source}:{line or '?'}: {where}: {message}")
        raise RulesError("invalid rules\n" + "\n".join(messages)) from None


def load_rules(path: str | Path | None = None) -> Rules:
    path = Path(path) if path else default_rules_path()
    try:
        text = path.read_text()
    except OSError as error:
        raise RulesError(
            f"cannot read rules file {path}: {error.strerror}. Set FINOPS_CONFIG to an existing "
            "YAML file, or unset it to use the shipped rules."
        ) from error
    return parse_rules(text, str(path))
