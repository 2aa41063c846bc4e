#!/usr/bin/env python3
"""Generate the real-data fixture for mlmon's quantile sketch (src/stats/sketch.rs).

Real columns from data sets bundled inside the statsmodels wheel (no download): the RAND
Health Insurance Experiment (`randhie`, 20 190 rows: visit counts, log incentives, chronic
disease scores, binary indicators), Fair's affairs survey (`fair`, 6 366 rows) and the
Mauna Loa weekly CO2 series (`co2`). Each case splits one column into a "reference" and a
"window" part; the expected KS statistic, its asymptotic p-value and the Wasserstein-1
distance come from scipy on the *full* parts, never from mlmon. The Rust test
`stats::sketch::tests::real_data_sets_match_scipy_within_the_spec` sketches both parts at
the default compression and checks SPEC section 5's accuracy targets.

    make deps    # .venv from tests/py/requirements.txt (statsmodels included)
    .venv/bin/python scripts/gen/sketch.py   # writes tests/fixtures/sketch/real.json

Deterministic: no randomness; the generator versions are recorded in the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import scipy
import statsmodels
import statsmodels.api as sm
from scipy import stats

# Output root: the repository, or $MLMON_GEN_ROOT (`make check-generated` writes to a temp dir).
ROOT = Path(os.environ.get("MLMON_GEN_ROOT") or Path(__file__).resolve().parents[2])
OUT = ROOT / "tests" / "fixtures" / "sketch" / "real.json"


def case(name: str, reference, window) -> dict:
    a = np.asarray(reference, dtype=float)
    b = np.asarray(window, dtype=float)
    a = a[np.isfinite(a)]
    b = b[np.isfinite(b)]
    ks = stats.ks_2samp(a, b, method="asymp")
    return {
        "name": name,
        "reference": a.tolist(),
        "window": b.tolist(),
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "wasserstein": float(stats.wasserstein_distance(a, b)),
        "reference_std": float(np.std(a)),
    }


def main() -> None:
    rand = sm.datasets.randhie.load_pandas().data
    fair = sm.datasets.fair.load_pandas().data
    co2 = sm.datasets.co2.load_pandas().data["co2"].to_numpy()
    half = len(rand) // 2
    cases = [
        case("randhie mdvis (visits), idp 0 vs 1", rand.mdvis[rand.idp == 0], rand.mdvis[rand.idp == 1]),
        case("randhie lpi, first vs second half", rand.lpi[:half], rand.lpi[half:]),
        case("randhie fmde, hlthg 0 vs 1", rand.fmde[rand.hlthg == 0], rand.fmde[rand.hlthg == 1]),
        case("randhie disea, physlm 0 vs > 0", rand.disea[rand.physlm == 0], rand.disea[rand.physlm > 0]),
        case("randhie idp (boolean), halves", rand.idp[:half], rand.idp[half:]),
        case("randhie lpi + fmde + disea pooled, idp 0 vs 1",
             np.concatenate([rand.lpi[rand.idp == 0], rand.fmde[rand.idp == 0], rand.disea[rand.idp == 0]]),
             np.concatenate([rand.lpi[rand.idp == 1], rand.fmde[rand.idp == 1], rand.disea[rand.idp == 1]])),
        case("fair affairs, rate_marriage >= 4 vs < 4", fair.affairs[fair.rate_marriage >= 4], fair.affairs[fair.rate_marriage < 4]),
        case("fair age, halves", fair.age[: len(fair) // 2], fair.age[len(fair) // 2 :]),
        case("co2 weekly ppm, 1958-1980 vs 1980-2001", co2[: len(co2) // 2], co2[len(co2) // 2 :]),
    ]
    out = {
        "generator": f"scripts/gen/sketch.py (numpy {np.__version__}, scipy {scipy.__version__}, statsmodels {statsmodels.__version__})",
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    for c in cases:
        print(f"{c['name']}: n {len(c['reference'])}/{len(c['window'])} KS {c['ks_statistic']:.5f} W1 {c['wasserstein']:.5f}")


if __name__ == "__main__":
    main()
