"""Where the test fixtures live: in the repository, with their licenses (fixtures/README.md), so a
fresh clone passes `make test` with nothing beside it."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REAL_SAMPLES = FIXTURES / "real_samples"
SPEC_EXAMPLES = FIXTURES / "focus_spec_examples"
LAYOUTS = FIXTURES / "layouts"
