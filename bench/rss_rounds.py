#!/usr/bin/env python3
"""The resident set of one `mlmon serve` after each of N rounds of saturation.

Usage: python3 bench/rss_rounds.py [ROUNDS, default 30]   (after `make bench` or
`python3 bench/run.py --only ab`, which build the binaries and write the workloads and the
baseline to target/bench-v2/)

Each round is 5 s at mlmon's closed-loop maximum (`bench/loadgen.rs`), alternating the
8x10 OIP and the 1-row records workloads over 64 or 32 connections, then the capture queue
is drained; the sidecar's VmRSS, RssAnon, RssFile and VmHWM are printed after every round.
Same servers, placement and configuration as `bench/run.py`'s phase ab (docs/performance.md,
"The resident set depends on how much saturation came before").
"""
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bench_run", REPO / "bench" / "run.py")
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    work = run.drift_run.target_dir() / "bench-v2"
    examples = run.drift_run.target_dir() / "release" / "examples"
    exes = {"mlmon": work / "mlmon", "upstream": examples / "bench_upstream", "plain": examples / "plain_proxy"}
    for name, path in exes.items():
        if not path.exists():
            sys.exit(f"{path} is missing ({name}): run `python3 bench/run.py --short --only ab` first")
    files = {f.name: f for f in work.glob("*.json")}
    cpus = run.cpu_placement()
    s = run.Servers(exes, work, cpus["servers"], {run.OIP_PATH: files["oip_8x10_resp.json"],
                                      run.RECORDS_PATH: files["records_1_resp.json"]},
                    [work / "bench-baseline.json"], "rounds", REPO / "bench" / "mlmon.yaml")
    lg = run.Loadgen(examples / "bench_loadgen", cpus["load"])
    try:
        for i in range(rounds):
            body, path = ((files["oip_8x10_req.json"], run.OIP_PATH) if i % 2 == 0
                          else (files["records_1_req.json"], run.RECORDS_PATH))
            r = lg.run([s.url("mlmon", path)], body, 5, connections=64 if i % 4 == 0 else 32)
            run.wait_drained(s.admin)
            m = run.rss(s.mlmon.pid)
            print(i, f"{r['rps']:.0f} rps", " ".join(f"{k} {m[k] / 1e6:.1f}" for k in
                                                      ("VmRSS", "RssAnon", "RssFile", "VmHWM")), flush=True)
    finally:
        s.close()


if __name__ == "__main__":
    main()
