"""pytest wiring for tests/deploy: tools are fetched once, figures reported at the end."""

import pytest

from helpers import VALIDATED, ensure_tools


@pytest.fixture(scope="session", autouse=True)
def tools() -> None:
    ensure_tools()


def pytest_terminal_summary(terminalreporter):
    if VALIDATED:
        total = sum(VALIDATED.values())
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(VALIDATED.items()))
        terminalreporter.write_line(f"deploy: validated {total} rendered objects ({kinds})")
