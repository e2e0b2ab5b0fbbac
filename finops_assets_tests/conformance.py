"""Official FOCUS conformance of core.cost_facts: the FinOps Foundation validator
(focus-validator 2.2.1, FOCUS 1.2 rules) on every source's rows, with an allow-list.

    python -m finops_assets_tests.conformance                  # sample + real samples, all sources
    python -m finops_assets_tests.conformance --warehouse data/warehouse.duckdb   # your warehouse

For each case (a warehouse built from generated sample exports, the real anonymized FOCUS 1.0
export, the real anonymized legacy CUR; or the warehouse you name) it exports core.cost_facts once
per ``x_Source`` to Parquet, runs the validator in its own Python 3.12 virtualenv
(``.tools/focus-validator``, made by ``make focus-validator``) through
``focus_validator_driver.py``, and judges every rule: passed, skipped (not applicable to this
data, or not implemented by the validator), allow-listed (``conformance/allowlist.yaml``) or
failed. Any failed rule exits 1; an allow-list entry that matched no failure is a warning (stale).

Why Parquet: the validator's CSV loader infers types, so numeric account ids become integers and
fail "BillingAccountId MUST be of type VARCHAR"; Parquet keeps our types (strings, DECIMAL(38, 12)
money, UTC timestamps). ``charge_date`` (our partition column, not FOCUS, not ``x_``-prefixed) is
left out; the ``x_`` lineage columns stay: FOCUS allows custom columns with that prefix.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from finops_assets_tests.paths import REAL_SAMPLES

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ALLOWLIST = REPO / "conformance" / "allowlist.yaml"
DEFAULT_VALIDATOR_PYTHON = REPO / ".tools" / "focus-validator" / "bin" / "python"
DRIVER = Path(__file__).with_name("focus_validator_driver.py")
FOCUS_VERSION = "1.2"
RULE_ID = re.compile(r"^[A-Za-z]+-[A-Z]-\d{3}-[A-Z]$")
CHILD_FAILURES = re.compile(r"failed child rules: \[([^\]]*)\]")
START_DATE = "2023-01-01"  # partitions must reach back to the real CUR sample (2023-11)


class AllowlistError(ValueError):
    pass


class ValidatorError(RuntimeError):
    pass


# --- allow-list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowlistEntry:
    rule_id: str
    reason: str
    sources: tuple[str, ...] | None = None  # None: every source

    def covers(self, source: str) -> bool:
        return self.sources is None or source in self.sources


def load_allowlist(path: Path) -> dict[str, AllowlistEntry]:
    """``RULE-ID: one-line reason`` or ``RULE-ID: {reason: ..., sources: [focus, ...]}``.
    Anything else is an error naming the entry and the fix."""
    try:
        document = yaml.safe_load(path.read_text()) if path.exists() else None
    except yaml.YAMLError as error:
        raise AllowlistError(f"{path}: not valid YAML: {error}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise AllowlistError(f"{path}: expected a mapping of rule id -> reason at the top level")
    entries = {}
    for rule_id, value in document.items():
        where = f"{path}: {rule_id!r}"
        if not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
            raise AllowlistError(
                f"{where}: not a validator rule id; use the id the validator prints, e.g. "
                "InvoiceId-C-004-C"
            )
        sources = None
        if isinstance(value, dict):
            unknown = set(value) - {"reason", "sources"}
            if unknown:
                raise AllowlistError(
                    f"{where}: unknown key(s) {sorted(unknown)}; allowed: reason, sources"
                )
            sources = value.get("sources")
            if sources is not None and (
                not isinstance(sources, list)
                or not sources
                or not all(isinstance(s, str) and s for s in sources)
            ):
                raise AllowlistError(
                    f"{where}: sources must be a non-empty list of x_Source names, e.g. [aws_cur]"
                )
            value = value.get("reason")
        if not isinstance(value, str) or not value.strip() or "\n" in value.strip():
            raise AllowlistError(
                f"{where}: needs a one-line reason (why the validator is wrong here, or which "
                "spec version differs)"
            )
        entries[rule_id] = AllowlistEntry(
            rule_id, value.strip(), tuple(sources) if sources is not None else None
        )
    return entries


# --- judging validator results -----------------------------------------------------------------


@dataclass
class RuleResult:
    rule_id: str
    status: str  # passed | failed | skipped (as the validator says)
    violations: int | None = None
    message: str | None = None
    samples: list = field(default_factory=list)


@dataclass
class SourceVerdict:
    case: str
    source: str
    rows: int
    seconds: float
    results: list[RuleResult]
    verdicts: dict[str, str] = field(default_factory=dict)  # rule_id -> final status
    reasons: dict[str, str] = field(default_factory=dict)  # allow-listed rule -> reason

    def count(self, status: str) -> int:
        return sum(1 for v in self.verdicts.values() if v == status)

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if self.verdicts[r.rule_id] == "failed"]


def judge(
    case: str, source: str, report: Mapping, allowlist: Mapping[str, AllowlistEntry]
) -> SourceVerdict:
    """Final status per rule. A failed rule is 'allow-listed' when its entry covers this source,
    and so is a composite (AND/OR of other rules) all of whose failed children are allow-listed:
    it fails only because of them."""
    results = [
        RuleResult(
            r["rule_id"], r["status"], r.get("violations"), r.get("message"), r.get("samples", [])
        )
        for r in report["rules"]
    ]
    verdict = SourceVerdict(case, source, report["rows"], report["seconds"], results)
    for result in results:
        entry = allowlist.get(result.rule_id)
        if result.status == "failed" and entry is not None and entry.covers(source):
            verdict.verdicts[result.rule_id] = "allow-listed"
            verdict.reasons[result.rule_id] = entry.reason
        else:
            verdict.verdicts[result.rule_id] = result.status
    changed = True
    while changed:
        changed = False
        for result in results:
            if verdict.verdicts[result.rule_id] != "failed":
                continue
            children = CHILD_FAILURES.search(result.message or "")
            if not children:
                continue
            ids = [c.strip() for c in children.group(1).split(",") if c.strip()]
            if ids and all(verdict.verdicts.get(c) == "allow-listed" for c in ids):
                verdict.verdicts[result.rule_id] = "allow-listed"
                verdict.reasons[result.rule_id] = "composite: fails only through " + ", ".join(ids)
                changed = True
    return verdict


def stale_entries(
    verdicts: Iterable[SourceVerdict], allowlist: Mapping[str, AllowlistEntry]
) -> list[str]:
    """Allow-list entries that matched no failure in any validated source they cover."""
    verdicts = list(verdicts)
    used = {
        rule_id
        for v in verdicts
        for rule_id, status in v.verdicts.items()
        if status == "allow-listed" and rule_id in allowlist
    }
    return sorted(set(allowlist) - used)


# --- building, exporting, validating -----------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """Exports to land and the charge days to materialize from them."""

    name: str
    land: Callable[[Path], None]
    days: tuple[date, date]


def _land_generated(days: int, rows_per_day: int, seed: int) -> Callable[[Path], None]:
    def land(landing: Path) -> None:
        from finops_assets.samples.aws_cur import generate_aws_cur
        from finops_assets.samples.azure import generate_azure_cost
        from finops_assets.samples.focus import generate_sample_exports
        from finops_assets.samples.gcp import generate_gcp_billing

        start = date(2025, 1, 1)
        generate_sample_exports(landing, start, days, rows_per_day, seed)
        generate_aws_cur(landing, start, days, max(rows_per_day // 2, 1), seed)
        generate_azure_cost(landing, start, days, max(rows_per_day // 2, 1), seed)
        generate_gcp_billing(landing, start, days, max(rows_per_day // 2, 1), seed)

    return land


def _land_real_focus(landing: Path) -> None:
    folder = landing / "focus" / "mixed" / "sample" / "billing_period=2024-09" / "d1"
    folder.mkdir(parents=True)
    shutil.copy(REAL_SAMPLES / "focus_1_0_sample_anonymized.csv", folder / "part-00000.csv")
    (folder / "manifest.json").write_text(
        '{"files": ["part-00000.csv"], "createdAt": "2024-10-02T00:00:00Z"}'
    )


def _land_real_cur(landing: Path) -> None:
    """The real legacy CUR as AWS delivers it (as finops_assets_tests/defs/test_aws_cur.py)."""
    report, period, assembly = "finops-cur", "20231101-20231201", "assembly-1"
    folder = landing / "aws-cur" / report / period / assembly
    folder.mkdir(parents=True)
    shutil.copy(REAL_SAMPLES / "aws_legacy_cur_anonymized.csv", folder / f"{report}-00001.csv")
    manifest = {
        "assemblyId": assembly,
        "reportKeys": [f"{report}/{period}/{assembly}/{report}-00001.csv"],
        "reportName": report,
        "billingPeriod": {"start": "20231101T000000.000Z", "end": "20231201T000000.000Z"},
    }
    (folder.parent / f"{report}-Manifest.json").write_text(json.dumps(manifest))


def default_cases(days: int = 3, rows_per_day: int = 300, seed: int = 7) -> list[Case]:
    generated_end = date.fromordinal(date(2025, 1, 1).toordinal() + days - 1)
    return [
        Case(
            "generated",
            _land_generated(days, rows_per_day, seed),
            (date(2025, 1, 1), generated_end),
        ),
        Case("real_focus_1_0", _land_real_focus, (date(2024, 9, 1), date(2024, 9, 30))),
        Case("real_aws_cur", _land_real_cur, (date(2023, 11, 1), date(2023, 11, 30))),
    ]


def build_warehouse(case: Case, workdir: Path) -> Path:
    """Land the case's exports and materialize raw + facts over its days; returns the DuckDB
    file. Fails if the pipeline itself fails (a conformance run on a broken load proves nothing)."""
    os.environ["FINOPS_START_DATE"] = START_DATE  # read when the partitions module first loads
    import dagster as dg

    from finops_assets.definitions import build_defs
    from finops_assets.settings import Settings

    landing = workdir / case.name / "landing"
    landing.mkdir(parents=True)
    case.land(landing)
    warehouse = workdir / case.name / "warehouse.duckdb"
    defs = build_defs(
        Settings(landing_url=str(landing), warehouse=str(warehouse), start_date=START_DATE)
    )
    job = defs.resolve_implicit_global_asset_job_def()
    # The validator reads core.cost_facts: the raw tables and the facts (with their checks) are
    # all it needs; amortization, allocation and the marts are not FOCUS datasets.
    selection = [
        dg.AssetKey(["raw", s]) for s in ("focus", "aws_cur", "azure_cost", "gcp_billing")
    ] + [dg.AssetKey(["core", "cost_facts"])]
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance,
            asset_selection=selection,
            tags={
                "dagster/asset_partition_range_start": case.days[0].isoformat(),
                "dagster/asset_partition_range_end": case.days[1].isoformat(),
            },
            raise_on_error=False,
        )
    failed_checks = [
        e.asset_check_key for e in result.get_asset_check_evaluations() if not e.passed
    ]
    if not result.success or failed_checks:
        raise RuntimeError(f"{case.name}: materialization failed (checks: {failed_checks})")
    return warehouse


def export_sources(warehouse: Path, outdir: Path) -> dict[str, Path]:
    """core.cost_facts as one Parquet file per x_Source, without charge_date."""
    import duckdb

    outdir.mkdir(parents=True, exist_ok=True)
    files = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        sources = [
            s
            for (s,) in con.execute(
                "SELECT DISTINCT x_Source FROM core.cost_facts ORDER BY 1"
            ).fetchall()
        ]
        for source in sources:
            path = outdir / f"cost_facts_{source}.parquet"
            con.execute(
                "COPY (SELECT * EXCLUDE (charge_date) FROM core.cost_facts WHERE x_Source = ? "
                f"ORDER BY ChargePeriodStart) TO '{path}' (FORMAT parquet)",
                [source],
            )
            files[source] = path
    return files


def run_validator(data_file: Path, validator_python: Path = DEFAULT_VALIDATOR_PYTHON) -> dict:
    """The validator's per-rule results for one file (see focus_validator_driver.py)."""
    if not Path(validator_python).exists():
        raise ValidatorError(
            f"{validator_python} not found: the FinOps Foundation validator lives in its own "
            "Python 3.12 virtualenv; create it with `make focus-validator`"
        )
    out_json = data_file.with_suffix(".validator.json")
    completed = subprocess.run(
        [
            *(str(validator_python), str(DRIVER), str(data_file), str(out_json)),
            *("--version", FOCUS_VERSION),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if completed.returncode != 0:
        raise ValidatorError(
            f"focus-validator failed on {data_file} (exit {completed.returncode}):\n"
            + completed.stderr[-4000:]
        )
    return json.loads(out_json.read_text())


def validate_warehouse(
    case: str,
    warehouse: Path,
    outdir: Path,
    allowlist: Mapping[str, AllowlistEntry],
    validator_python: Path = DEFAULT_VALIDATOR_PYTHON,
) -> list[SourceVerdict]:
    files = export_sources(warehouse, outdir)
    with ThreadPoolExecutor(max_workers=2) as pool:  # the validator is single-threaded Python
        reports = dict(
            zip(
                files,
                pool.map(lambda f: run_validator(f, validator_python), files.values()),
                strict=True,
            )
        )
    return [judge(case, source, reports[source], allowlist) for source in files]


# --- reporting ---------------------------------------------------------------------------------


def summary(verdicts: list[SourceVerdict], stale: list[str]) -> str:
    header = f"{'case':<16} {'source':<10} {'rows':>7} {'passed':>6} {'failed':>6} "
    header += f"{'allowed':>7} {'skipped':>7} {'secs':>5}"
    lines = [f"FOCUS {FOCUS_VERSION} conformance (focus-validator 2.2.1)", header]
    for v in verdicts:
        lines.append(
            f"{v.case:<16} {v.source:<10} {v.rows:>7} {v.count('passed'):>6} "
            f"{v.count('failed'):>6} {v.count('allow-listed'):>7} {v.count('skipped'):>7} "
            f"{v.seconds:>5.1f}"
        )
    for v in verdicts:
        for rule_id, reason in sorted(v.reasons.items()):
            lines.append(f"  allow-listed {v.case}/{v.source} {rule_id}: {reason}")
    for v in verdicts:
        for r in v.failed:
            sample = json.dumps(r.samples[:2], default=str)[:300] if r.samples else ""
            lines.append(
                f"  FAILED {v.case}/{v.source} {r.rule_id}: {r.violations} rows: {r.message} "
                f"{sample}"
            )
    for rule_id in stale:
        lines.append(
            f"  warning: allow-list entry {rule_id} matched no failure: remove it from "
            f"{DEFAULT_ALLOWLIST.relative_to(REPO)}"
        )
    failed = sum(v.count("failed") for v in verdicts)
    lines.append(
        f"{'FAIL' if failed else 'OK'}: {failed} failed rule(s) in "
        f"{len(verdicts)} source validation(s)"
    )
    return "\n".join(lines)


def run(
    cases: list[Case] | None,
    workdir: Path,
    allowlist_path: Path = DEFAULT_ALLOWLIST,
    validator_python: Path = DEFAULT_VALIDATOR_PYTHON,
    warehouse: Path | None = None,
) -> tuple[list[SourceVerdict], list[str]]:
    allowlist = load_allowlist(allowlist_path)  # a malformed allow-list fails before any work
    verdicts = []
    if warehouse is not None:
        verdicts += validate_warehouse(
            "warehouse", warehouse, workdir / "warehouse", allowlist, validator_python
        )
    for case in cases or []:
        built = build_warehouse(case, workdir)
        verdicts += validate_warehouse(
            case.name, built, workdir / case.name / "export", allowlist, validator_python
        )
    return verdicts, stale_entries(verdicts, allowlist)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, help="validate this DuckDB file's cost_facts")
    parser.add_argument(
        "--cases",
        default="generated,real_focus_1_0,real_aws_cur",
        help="built-in cases to build and validate (comma-separated; '' for none)",
    )
    parser.add_argument("--days", type=int, default=3, help="generated sample: charge days")
    parser.add_argument("--rows-per-day", type=int, default=300, help="generated sample size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--allowlist", type=Path, default=DEFAULT_ALLOWLIST)
    parser.add_argument("--validator-python", type=Path, default=DEFAULT_VALIDATOR_PYTHON)
    parser.add_argument("--workdir", type=Path, help="keep landing, warehouses and reports here")
    parser.add_argument("--report", type=Path, help="write per-rule results as JSON here")
    args = parser.parse_args(argv)

    chosen = [c for c in args.cases.split(",") if c]
    cases = [c for c in default_cases(args.days, args.rows_per_day, args.seed) if c.name in chosen]
    unknown = set(chosen) - {c.name for c in cases}
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}")
    if args.warehouse is not None and not args.warehouse.exists():
        parser.error(f"--warehouse {args.warehouse}: no such file")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="focus-conformance-"))
    if args.workdir and args.workdir.exists():
        shutil.rmtree(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        verdicts, stale = run(cases, workdir, args.allowlist, args.validator_python, args.warehouse)
    except (AllowlistError, ValidatorError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary(verdicts, stale))
    print(f"({time.monotonic() - started:.0f} s; files in {workdir})")
    if args.report:
        args.report.write_text(
            json.dumps(
                [
                    {
                        "case": v.case,
                        "source": v.source,
                        "rows": v.rows,
                        "verdicts": v.verdicts,
                        "allow_listed": v.reasons,
                    }
                    for v in verdicts
                ],
                indent=1,
            )
        )
    return 1 if any(v.failed for v in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
