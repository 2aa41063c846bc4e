#!/usr/bin/env python3
"""A STAND-IN for the mlmon admin endpoint, for developing the end-to-end test before the
mlmon binary existed. It serves every SPEC section 6 family on 127.0.0.1 with plausible
values; after `drift_after` seconds the input feature `amount` drifts critically, the
prediction drifts to warning and the anomaly rate rises.

It is NOT evidence that mlmon works: test_e2e.py runs the same checks against the real
`mlmon demo` (target "mlmon"); this fake only keeps the Prometheus/Alertmanager/dashboard
plumbing testable on its own.

    python3 tests/py/fake_mlmon.py --port 9464 [--drift-after 5]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "fraud"
RATE = 20.0  # requests per second, one row each
LAT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]
LAT_CDF = [0.1, 0.4, 0.8, 0.95, 0.99, 1.0, 1.0, 1.0]  # share of requests <= bucket
SCORE_BUCKETS = [0.5, 1, 2, 4, 8]
SCORE_CDF = [0.5, 0.8, 0.95, 0.995, 1.0]
# (feature, kind, baseline {bin: share}, drifted {bin: share}, numeric?)
FEATURES = [
    ("amount", "input", {"0": 0.25, "1": 0.25, "2": 0.25, "3": 0.25}, {"0": 0.05, "1": 0.1, "2": 0.25, "3": 0.6}, True),
    ("channel", "input", {"web": 0.5, "app": 0.3, "store": 0.2}, {"web": 0.5, "app": 0.3, "store": 0.2}, False),
    ("prediction", "output", {"0": 0.7, "1": 0.3}, {"0": 0.55, "1": 0.45}, True),
]


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in kv.items()) + "}"


class FakeMlmon:
    """Threaded HTTP server exposing /metrics and /healthz on 127.0.0.1."""

    def __init__(self, port: int = 0, drift_after: float = 3.0):
        self.started = time.time()
        self.drift_after = drift_after
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.startswith("/metrics"):
                    body = fake.render().encode()
                    ctype = "text/plain; version=0.0.4; charset=utf-8"
                elif self.path in ("/healthz", "/readyz"):
                    body, ctype = b"ok\n", "text/plain"
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> "FakeMlmon":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def render(self) -> str:  # noqa: C901 - one flat list of families
        now = time.time()
        t = now - self.started
        drifted = t >= self.drift_after
        before, after = min(t, self.drift_after), max(0.0, t - self.drift_after)
        n = RATE * t
        m = _labels(model=MODEL)
        out: list[str] = []

        def fam(name: str, kind: str, samples: list[tuple[str, float]], help_: str = "stand-in"):
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(f"{s} {v:.10g}" for s, v in samples)

        def hist(name: str, buckets, cdf, count: float, mean: float):
            out.append(f"# HELP {name} stand-in")
            out.append(f"# TYPE {name} histogram")
            for le, share in zip(buckets, cdf):
                out.append(f"{name}_bucket{_labels(model=MODEL, le=str(le))} {count * share:.10g}")
            out.append(f"{name}_bucket{_labels(model=MODEL, le='+Inf')} {count:.10g}")
            out.append(f"{name}_sum{m} {count * mean:.10g}")
            out.append(f"{name}_count{m} {count:.10g}")

        fam("mlmon_requests_total", "counter", [
            (f"mlmon_requests_total{_labels(model=MODEL, code='2xx')}", n * 0.99),
            (f"mlmon_requests_total{_labels(model=MODEL, code='4xx')}", n * 0.008),
            (f"mlmon_requests_total{_labels(model=MODEL, code='5xx')}", n * 0.002),
            (f"mlmon_requests_total{_labels(model=MODEL, code='error')}", 0.0),
        ])
        hist("mlmon_request_duration_seconds", LAT_BUCKETS, LAT_CDF, n, 0.02)
        hist("mlmon_upstream_duration_seconds", LAT_BUCKETS, LAT_CDF, n, 0.018)
        fam("mlmon_latency_seconds", "gauge", [
            (f"mlmon_latency_seconds{_labels(model=MODEL, quantile=q)}", v) for q, v in (("0.5", 0.015), ("0.95", 0.05), ("0.99", 0.09))])
        fam("mlmon_sla_violations_total", "counter", [(f"mlmon_sla_violations_total{m}", n * 0.01)])
        fam("mlmon_predictions_total", "counter", [(f"mlmon_predictions_total{m}", n)])
        fam("mlmon_payload_errors_total", "counter", [(f"mlmon_payload_errors_total{_labels(model=MODEL, reason='invalid_json')}", n * 0.001)])
        fam("mlmon_capture_dropped_total", "counter", [(f"mlmon_capture_dropped_total{_labels(reason='queue_full')}", 0.0)])

        stats = {"psi": [], "js": [], "ks": [], "ksp": [], "w": [], "chi2": [], "status": [], "bins": [], "base": []}
        for feature, kind, base, drift, numeric in FEATURES:
            fl = _labels(model=MODEL, feature=feature, kind=kind)
            moved = drifted and base != drift
            psi = (0.35 if feature == "amount" else 0.15) if moved else 0.01
            status = (2 if psi >= 0.2 else 1 if psi >= 0.1 else 0)
            stats["psi"].append((f"mlmon_feature_psi{fl}", psi))
            stats["js"].append((f"mlmon_feature_js_divergence{fl}", psi / 4))
            stats["status"].append((f"mlmon_feature_drift_status{fl}", status))
            if numeric:
                stats["ks"].append((f"mlmon_feature_ks_statistic{fl}", 0.3 if moved else 0.02))
                stats["ksp"].append((f"mlmon_feature_ks_pvalue{fl}", 1e-9 if moved else 0.6))
                stats["w"].append((f"mlmon_feature_wasserstein{fl}", 12.5 if moved else 0.4))
            else:
                stats["chi2"].append((f"mlmon_feature_chi2_pvalue{fl}", 0.7))
            for b, share in base.items():
                count = RATE * (before * share + after * drift[b])
                stats["bins"].append((f"mlmon_feature_bin_observations_total{_labels(model=MODEL, feature=feature, kind=kind, bin=b)}", count))
                stats["base"].append((f"mlmon_baseline_bin_ratio{_labels(model=MODEL, feature=feature, kind=kind, bin=b)}", share))
        fam("mlmon_feature_psi", "gauge", stats["psi"])
        fam("mlmon_feature_js_divergence", "gauge", stats["js"])
        fam("mlmon_feature_ks_statistic", "gauge", stats["ks"])
        fam("mlmon_feature_ks_pvalue", "gauge", stats["ksp"])
        fam("mlmon_feature_wasserstein", "gauge", stats["w"])
        fam("mlmon_feature_chi2_pvalue", "gauge", stats["chi2"])
        fam("mlmon_feature_drift_status", "gauge", stats["status"])
        fam("mlmon_model_drift_score", "gauge", [(f"mlmon_model_drift_score{m}", 0.5 if drifted else 0.0)])
        fam("mlmon_feature_bin_observations_total", "counter", stats["bins"])
        fam("mlmon_baseline_bin_ratio", "gauge", stats["base"])

        inputs = [f for f, kind, *_ in FEATURES if kind == "input"]
        for name, value in (("mlmon_feature_missing_ratio", 0.01), ("mlmon_feature_outlier_ratio", 0.005),
                            ("mlmon_feature_out_of_range_ratio", 0.002)):
            fam(name, "gauge", [(f"{name}{_labels(model=MODEL, feature=f)}", value) for f in inputs])
        fam("mlmon_feature_stat", "gauge", [
            (f"mlmon_feature_stat{_labels(model=MODEL, feature='amount', stat=s)}", v)
            for s, v in (("mean", 80.0 if drifted else 50.0), ("std", 10.0), ("min", 1.0), ("max", 200.0))])
        fam("mlmon_feature_errors_total", "counter", [
            (f"mlmon_feature_errors_total{_labels(model=MODEL, feature=f, reason='missing')}", n * 0.01) for f in inputs])
        fam("mlmon_data_quality_score", "gauge", [(f"mlmon_data_quality_score{m}", 0.97)])
        fam("mlmon_last_prediction_timestamp_seconds", "gauge", [(f"mlmon_last_prediction_timestamp_seconds{m}", now)])
        anomaly = 0.012 if drifted else 0.002
        fam("mlmon_anomalies_total", "counter", [(f"mlmon_anomalies_total{m}", RATE * (before * 0.002 + after * 0.012))])
        fam("mlmon_anomaly_rate", "gauge", [(f"mlmon_anomaly_rate{m}", anomaly)])
        fam("mlmon_anomaly_trend", "gauge", [(f"mlmon_anomaly_trend{m}", 1 if drifted else 0)])
        hist("mlmon_anomaly_score", SCORE_BUCKETS, SCORE_CDF, n, 0.7)
        fam("mlmon_performance", "gauge", [
            (f"mlmon_performance{_labels(model=MODEL, metric=k)}", v)
            for k, v in (("accuracy", 0.91), ("precision", 0.88), ("recall", 0.84), ("f1", 0.86))])
        fam("mlmon_estimated_performance", "gauge", [(f"mlmon_estimated_performance{_labels(model=MODEL, metric='accuracy')}", 0.9)])
        fam("mlmon_feedback_total", "counter", [
            (f"mlmon_feedback_total{_labels(model=MODEL, result=r)}", n * s) for r, s in (("matched", 0.5), ("unmatched", 0.01), ("late", 0.0))])
        fam("mlmon_feature_importance", "gauge", [
            (f"mlmon_feature_importance{_labels(model=MODEL, feature=f, method='permutation')}", v)
            for f, v in (("amount", 0.6), ("channel", 0.2))])
        fam("mlmon_model_health", "gauge", [(f"mlmon_model_health{m}", 2 if drifted else 0)])
        # Shadow traffic (SPEC section 10): a candidate that agrees on 92 % of rows.
        fam("mlmon_shadow_requests_total", "counter", [
            (f"mlmon_shadow_requests_total{_labels(model=MODEL, result=r)}", n * share)
            for r, share in (("ok", 0.99), ("error", 0.01), ("timeout", 0.0), ("skipped", 0.0))
        ])
        hist("mlmon_shadow_duration_seconds", LAT_BUCKETS, LAT_CDF, n * 0.99, 0.03)
        fam("mlmon_shadow_agreement", "gauge", [(f"mlmon_shadow_agreement{m}", 0.92)])
        fam("mlmon_shadow_prediction_psi", "gauge", [(f"mlmon_shadow_prediction_psi{m}", 0.02)])
        fam("mlmon_build_info", "gauge", [(f"mlmon_build_info{_labels(version='0.0.0-fake')}", 1)])
        fam("mlmon_baseline_info", "gauge", [(f"mlmon_baseline_info{_labels(model=MODEL, id='fake-baseline')}", 1)])
        fam("process_cpu_seconds_total", "counter", [("process_cpu_seconds_total", 0.05 * t)])
        fam("process_resident_memory_bytes", "gauge", [("process_resident_memory_bytes", 42e6)])
        fam("process_start_time_seconds", "gauge", [("process_start_time_seconds", self.started)])
        return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9464)
    parser.add_argument("--drift-after", type=float, default=60.0)
    args = parser.parse_args()
    fake = FakeMlmon(port=args.port, drift_after=args.drift_after)
    print(f"fake mlmon metrics on http://{fake.address}/metrics", flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
