#!/bin/bash
# Usage: bench/analysis/callgrind.sh TAG [checkout dir, default: cwd]  (output in target/callgrind/)
# Callgrind instructions per analysed 8x10 exchange of examples/analysis_throughput:
# (inclusive Ir of a 4000-exchange run minus a 1-exchange run) / 3999, per function.
# Needs: cargo build --release --example analysis_throughput (in that checkout).
set -e
TAG=${1:?tag}; DIR=${2:-$PWD}
BIN=$DIR/target/release/examples/analysis_throughput
OUT=$DIR/target/callgrind; mkdir -p $OUT
valgrind --tool=callgrind --callgrind-out-file=$OUT/$TAG.4000 $BIN --exchanges 4000 >/dev/null 2>&1
valgrind --tool=callgrind --callgrind-out-file=$OUT/$TAG.1 $BIN --exchanges 1 >/dev/null 2>&1
python3 - "$OUT/$TAG" <<'PY'
import subprocess, sys, re
base = sys.argv[1]
def incl(path):
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(?:\*\s+)?(.*)", line)
        if m:
            name = m.group(2)
            name = re.sub(r"^[^ ]*:", "", name, count=1) if ":" in name.split(" ")[0] else name
            d[name.strip()] = d.get(name.strip(), 0) + int(m.group(1).replace(",", ""))
    return d
a, b = incl(base + ".4000"), incl(base + ".1")
rows = sorted(((v - b.get(k, 0)) / 3999, k) for k, v in a.items())
rows = [r for r in rows if r[0] > 500][::-1]
for v, k in rows[:70]:
    print(f"{v/1000:9.1f} k  {k[:150]}")
PY
