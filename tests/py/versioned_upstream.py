"""A model server with two versions of one classifier, for end-to-end runs that need
versioned traffic (tests/py/test_alerting.py): Open Inference Protocol v2 on
`/v2/models/{model}/versions/{v}/infer`, answering `predict` and `predict_proba` for rows
`[x0, x1]` (class 1 when x0 + x1 > 0).

`v1` answers right and fast. `v2` is the bad candidate: it answers 500 for about a third of
the requests, 15 ms slower, and with the wrong class for a quarter of the rows. Standard
library only; binds 127.0.0.1.
"""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


def predict(rows: list[list[float]], version: str, rng: random.Random) -> tuple[list[int], list[float]]:
    labels, proba = [], []
    for x0, x1 in rows:
        p1 = 1.0 / (1.0 + pow(2.718281828, -4.0 * (x0 + x1)))
        label = int(p1 > 0.5)
        if version != "v1" and rng.random() < 0.25:
            label, p1 = 1 - label, 1.0 - p1
        labels.append(label)
        proba += [1.0 - p1, p1]
    return labels, proba


class _Handler(BaseHTTPRequestHandler):
    rng = random.Random(5)
    lock = threading.Lock()

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        parts = self.path.strip("/").split("/")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if len(parts) != 6 or parts[:2] != ["v2", "models"] or parts[3] != "versions" or parts[5] != "infer":
            return self._send(404, {"error": "unknown path"})
        model, version = parts[2], parts[4]
        req = json.loads(body)
        data = req["inputs"][0]["data"]
        rows = [data[i:i + 2] for i in range(0, len(data), 2)]
        with self.lock:
            fail = version != "v1" and self.rng.random() < 0.35
            labels, proba = predict(rows, version, self.rng)
        if version != "v1":
            time.sleep(0.015)
        if fail:
            return self._send(500, {"error": "candidate failed"})
        self._send(200, {"model_name": model, "model_version": version, "id": req.get("id", ""), "outputs": [
            {"name": "predict", "shape": [len(rows), 1], "datatype": "INT64", "data": labels},
            {"name": "predict_proba", "shape": [len(rows), 2], "datatype": "FP64", "data": proba},
        ]})

    def _send(self, status: int, doc: dict) -> None:
        raw = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class VersionedUpstream:
    """The server on 127.0.0.1:<ephemeral port>."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "VersionedUpstream":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class VersionedTraffic:
    """Sends requests to both versions through a proxy (`proxy_url`) and their ground truth
    to mlmon's feedback API (`admin_url`) until stopped or `duration` seconds have passed."""

    def __init__(self, proxy_url: str, admin_url: str, model: str, duration: float = 600.0) -> None:
        self.proxy_url, self.admin_url, self.model, self.duration = proxy_url, admin_url, model, duration
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0

    def start(self) -> "VersionedTraffic":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        rng = random.Random(11)
        end = time.monotonic() + self.duration
        with requests.Session() as s:
            s.trust_env = False
            i = 0
            while not self._stop.is_set() and time.monotonic() < end:
                for version in ("v1", "v2"):
                    rows = [[rng.gauss(0, 1), rng.gauss(0, 1)] for _ in range(4)]
                    rid = f"{version}-{i}"
                    body = {"id": rid, "inputs": [{"name": "input-0", "shape": [4, 2], "datatype": "FP64",
                                                   "data": [v for r in rows for v in r]}]}
                    try:
                        r = s.post(f"{self.proxy_url}/v2/models/{self.model}/versions/{version}/infer",
                                   json=body, headers={"x-request-id": rid}, timeout=5)
                        if r.status_code == 200:
                            truth = [{"request_id": rid, "row": k, "actual": int(x0 + x1 > 0)}
                                     for k, (x0, x1) in enumerate(rows)]
                            s.post(f"{self.admin_url}/api/v1/feedback/{self.model}", json=truth, timeout=5)
                        self.sent += 1
                    except requests.RequestException:
                        pass
                i += 1
                self._stop.wait(0.05)
