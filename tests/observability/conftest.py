"""Fixtures for the observability tests (rules, Alertmanager, dashboards, end to end).

Needs the Debian packages `prometheus` and `prometheus-alertmanager` (promtool, amtool,
prometheus, prometheus-alertmanager); a missing tool FAILS the tests that need it, it never
skips them. Override the paths with PROMTOOL, AMTOOL, PROMETHEUS, ALERTMANAGER.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from obs_helpers import find_tool  # noqa: E402


def _tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        pytest.fail(f"{name} not found: install the Debian packages prometheus and prometheus-alertmanager "
                    f"(apt-get install -y --no-install-recommends prometheus prometheus-alertmanager)")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _tool("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return _tool("amtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return _tool("prometheus")


@pytest.fixture(scope="session")
def alertmanager_bin() -> str:
    return _tool("alertmanager")
