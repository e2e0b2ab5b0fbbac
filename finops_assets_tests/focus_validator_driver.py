"""Runs INSIDE the focus-validator virtualenv (Python 3.12, `.tools/focus-validator`), never in
ours: it imports only the standard library and `focus_validator`. finops_assets_tests.conformance
starts it with that venv's interpreter.

Why not the `focus-validator` command: its console and JUnit outputs drop the failure details
(violation counts, messages) or mix them with log lines; the Python API gives every rule's status,
and this writes them as one JSON document the runner parses.

Usage: python focus_validator_driver.py DATA_FILE OUT_JSON [--version 1.2] [--criteria ALL]
"""

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_file", type=Path)
    parser.add_argument("out_json", type=Path)
    parser.add_argument("--version", default="1.2")
    parser.add_argument("--criteria", default=None, help="applicability criteria, or ALL")
    args = parser.parse_args()
    data_file = args.data_file.resolve()
    out_json = args.out_json.resolve()

    import focus_validator
    from focus_validator.validator import Validator

    # focus-validator 2.2.1 reads its ISO currency list from the relative path
    # 'focus_validator/rules/currency_codes.csv': it only works from its site-packages folder.
    os.chdir(Path(focus_validator.__file__).parent.parent)
    logging.disable(logging.INFO)
    started = time.monotonic()
    validator = Validator(
        data_filename=str(data_file),
        output_destination=None,
        output_type="console",
        rules_version=args.version,
        focus_dataset="CostAndUsage",
        rules_block_remote_download=True,  # the bundled rules; no network at validation time
        applicability_criteria=args.criteria,
        show_violations=True,
    )
    # The console outputter prints every rule; we report from the JSON instead.
    with contextlib.redirect_stdout(sys.stderr if os.environ.get("FOCUS_VALIDATOR_ECHO") else None):
        results = validator.validate()
    rules = []
    for rule_id, entry in sorted(results.by_rule_id.items()):
        details = entry.get("details") or {}
        status = "skipped" if details.get("skipped") else "passed" if entry.get("ok") else "failed"
        rule = results.rules.get(rule_id)
        criteria = getattr(rule, "validation_criteria", None)
        samples = []
        failure_cases = details.get("failure_cases")
        if status == "failed" and hasattr(failure_cases, "head"):
            samples = json.loads(failure_cases.head(3).to_json(orient="records", date_format="iso"))
        rules.append(
            {
                "rule_id": rule_id,
                "status": status,
                "violations": details.get("violations"),
                "message": details.get("message") or details.get("reason"),
                "must_satisfy": getattr(criteria, "must_satisfy", None),
                "samples": samples,
            }
        )
    document = {
        "focus_version": results.rules_version,
        "model_version": results.model_version,
        "data_file": str(data_file),
        "rows": results.data_row_count,
        "seconds": round(time.monotonic() - started, 3),
        "rules": rules,
    }
    out_json.write_text(json.dumps(document, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
