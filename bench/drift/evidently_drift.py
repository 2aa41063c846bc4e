#!/usr/bin/env python3
"""The Evidently side of the drift benchmark (bench/drift/run.py).

Runs Evidently's `DataDriftPreset` report on the same reference and current CSVs that
`mlmon baseline build` and `mlmon drift` read, the way a pipeline would: load both CSVs
with pandas, run the report, materialise its results (`Snapshot.dict()`). Prints one JSON
object: the CSV load time, the report time, their total, the columns Evidently found
drifted, its per-column values and methods, the peak resident memory of this process
(`ru_maxrss`) and the package versions. Evidently picks each column's method itself
(for more than 1000 rows: normed Wasserstein for numeric columns, Jensen-Shannon for
categorical ones); the defaults are kept.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from importlib.metadata import version
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", type=Path, required=True)
    p.add_argument("--current", type=Path, required=True)
    args = p.parse_args()

    t_start = time.perf_counter()
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    t_import = time.perf_counter()
    reference = pd.read_csv(args.reference)
    current = pd.read_csv(args.current)
    t_load = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    result = snapshot.dict()
    t_run = time.perf_counter()

    drifted = None
    columns = {}
    for m in result.get("metrics", []):
        cfg = m.get("config", {})
        kind = cfg.get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            drifted = m.get("value")
        elif kind.endswith("ValueDrift"):
            columns[cfg.get("column")] = {
                "method": cfg.get("method"),
                "threshold": cfg.get("threshold"),
                "value": m.get("value"),
            }
    if drifted is None or not columns:
        sys.exit("evidently: the report has no DriftedColumnsCount/ValueDrift results")
    print(
        json.dumps(
            {
                "rows": {"reference": len(reference), "current": len(current)},
                "columns": len(reference.columns),
                "import_seconds": t_import - t_start,
                "load_seconds": t_load - t_import,
                "report_seconds": t_run - t_load,
                "load_and_report_seconds": t_run - t_import,
                "drifted": drifted,
                "per_column": columns,
                "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "versions": {k: version(k) for k in ("evidently", "pandas", "numpy", "scipy")},
            }
        )
    )


if __name__ == "__main__":
    main()
