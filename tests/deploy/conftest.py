"""pytest wiring for tests/deploy: tools are fetched once, figures reported at the end.

The suite runs under `--import-mode=importlib` (several test directories share one pytest
run), which does not put test directories on sys.path: add this one for deploy_helpers.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_helpers import VALIDATED, ensure_tools  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def tools() -> None:
    ensure_tools()


def pytest_terminal_summary(terminalreporter):
    if VALIDATED:
        total = sum(VALIDATED.values())
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(VALIDATED.items()))
        terminalreporter.write_line(f"deploy: validated {total} rendered objects ({kinds})")
