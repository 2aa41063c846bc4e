#!/usr/bin/env bash
# make observe: run `mlmon demo`, a local Prometheus with the mlmon rules, a local
# Alertmanager and a webhook receiver that prints the alerts, all on 127.0.0.1.
# Ctrl-C stops everything.
#
# Needs: the mlmon binary (built if missing), Debian packages prometheus and
# prometheus-alertmanager, python3.
#
# Environment:
#   MLMON_BIN            mlmon binary (default: target/release/mlmon, else target/debug/mlmon)
#   PROXY_PORT=8000 ADMIN_PORT=9464 PROM_PORT=9090 AM_PORT=9093 WEBHOOK_PORT=9095
#   DRIFT_AFTER=60       seconds of normal demo traffic before it drifts
#   OBSERVE_FAST_RULES=1 shorten every alert's `for:` to 30s so alerts show up within a
#                        minute of the drift; 0 keeps the production durations
#   OBSERVE_DURATION     stop after this many seconds (default: run until Ctrl-C)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROXY_PORT="${PROXY_PORT:-8000}"
ADMIN_PORT="${ADMIN_PORT:-9464}"
PROM_PORT="${PROM_PORT:-9090}"
AM_PORT="${AM_PORT:-9093}"
WEBHOOK_PORT="${WEBHOOK_PORT:-9095}"
DRIFT_AFTER="${DRIFT_AFTER:-60}"
OBSERVE_FAST_RULES="${OBSERVE_FAST_RULES:-1}"
OBSERVE_DURATION="${OBSERVE_DURATION:-}"

die() { echo "observe: $*" >&2; exit 1; }

prometheus="$(command -v prometheus || true)"
alertmanager="$(command -v prometheus-alertmanager || command -v alertmanager || true)"
[[ -n "$prometheus" && -n "$alertmanager" ]] ||
  die "prometheus and alertmanager not found; install them with: apt-get install -y --no-install-recommends prometheus prometheus-alertmanager"
command -v python3 >/dev/null || die "python3 not found"

mlmon="${MLMON_BIN:-}"
if [[ -z "$mlmon" ]]; then
  for p in "$repo/target/release/mlmon" "$repo/target/debug/mlmon"; do
    if [[ -x "$p" ]]; then mlmon="$p"; break; fi
  done
fi
if [[ -z "$mlmon" ]]; then
  echo "observe: building mlmon (cargo build --bin mlmon)"
  (cd "$repo" && cargo build --bin mlmon)
  mlmon="$repo/target/debug/mlmon"
fi
[[ -x "$mlmon" ]] || die "mlmon binary not executable: $mlmon"

work="$(mktemp -d "${TMPDIR:-/tmp}/mlmon-observe.XXXXXX")"
pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  echo "observe: stopped"
}
trap cleanup INT TERM EXIT

mkdir -p "$work/rules"
for f in "$repo"/prometheus/rules/*.yml; do
  if [[ "$OBSERVE_FAST_RULES" == "1" ]]; then
    sed -E 's/^([[:space:]]+for:[[:space:]]*).*/\130s/' "$f" >"$work/rules/$(basename "$f")"
  else
    cp "$f" "$work/rules/"
  fi
done

cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $work/rules/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$AM_PORT']
scrape_configs:
  - job_name: mlmon
    static_configs:
      - targets: ['127.0.0.1:$ADMIN_PORT']
EOF

# Same grouping and inhibition as alertmanager/alertmanager.yml, one local receiver.
cat >"$work/alertmanager.yml" <<EOF
route:
  receiver: local-webhook
  group_by: [alertname, namespace, job, model]
  group_wait: 5s
  group_interval: 30s
  repeat_interval: 4h
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [namespace, job, model, event]
receivers:
  - name: local-webhook
    webhook_configs:
      - url: 'http://127.0.0.1:$WEBHOOK_PORT/mlmon-events'
        send_resolved: true
EOF

demo_args=(demo --listen "127.0.0.1:$PROXY_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" --drift-after "$DRIFT_AFTER")
[[ -n "$OBSERVE_DURATION" ]] && demo_args+=(--duration "$OBSERVE_DURATION")

python3 "$repo/tests/py/webhook_receiver.py" --port "$WEBHOOK_PORT" &
pids+=($!)
"$alertmanager" --config.file="$work/alertmanager.yml" --storage.path="$work/alertmanager" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= >"$work/alertmanager.log" 2>&1 &
pids+=($!)
"$prometheus" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --rules.alert.resend-delay=10s >"$work/prometheus.log" 2>&1 &
pids+=($!)
"$mlmon" "${demo_args[@]}" &
demo_pid=$!
pids+=("$demo_pid")

sleep 2
for pid in "${pids[@]}"; do
  kill -0 "$pid" 2>/dev/null || die "a component exited at start-up; logs in $work (prometheus.log, alertmanager.log)"
done

cat <<EOF

mlmon observe stack (all on 127.0.0.1; Ctrl-C stops everything)
  mlmon proxy        http://127.0.0.1:$PROXY_PORT
  mlmon metrics      http://127.0.0.1:$ADMIN_PORT/metrics
  Prometheus         http://127.0.0.1:$PROM_PORT   (alerts: /alerts, rules: /rules)
  Alertmanager       http://127.0.0.1:$AM_PORT
  webhook receiver   http://127.0.0.1:$WEBHOOK_PORT  (alerts are printed below)
  rules              $repo/prometheus/rules ($( [[ "$OBSERVE_FAST_RULES" == "1" ]] && echo "for: shortened to 30s" || echo "production for: durations"))
  dashboards         import $repo/grafana/dashboards/*.json into a Grafana pointed at the Prometheus above
  demo traffic drifts after ${DRIFT_AFTER}s

EOF

wait "$demo_pid" || true
