"""Hostile names cannot make /metrics unparseable (issue 11, finding 1): model, feature and
event names with quotes, backslashes, newlines, `#`, `{`, `}` and random Unicode go through
the proxy, the ingestion API and the KServe event endpoint of the real binary; the page must
pass `promtool check metrics` and prometheus_client's parsers (text and OpenMetrics) and give
every name back. The probe itself lives in tests/reliability/probes.py (also run by
`make reliability` against the release binary)."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

PROBES = Path(__file__).resolve().parents[1] / "reliability" / "probes.py"


def load_probes():
    spec = importlib.util.spec_from_file_location("mlmon_probes", PROBES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hostile_names_read_back_from_both_formats(mlmon_bin, promtool):
    probes = load_probes()
    upstream = probes.Upstream(probes.free_port())
    upstream.start()
    workdir = tempfile.mkdtemp(prefix="mlmon-exposition-")
    sidecar = probes.Sidecar(str(mlmon_bin), upstream.port, workdir)
    try:
        sidecar.start()
        figures = probes.probe_label_injection(sidecar, long=False)
        assert figures["names"] > 50
        probes.check_metrics(sidecar.admin)
    finally:
        try:
            sidecar.stop()
        finally:
            upstream.stop()
