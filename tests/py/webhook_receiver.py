#!/usr/bin/env python3
"""A tiny Alertmanager webhook receiver on 127.0.0.1.

Library: `WebhookReceiver().start()` records every notification (path + JSON body) for
tests. Command line (used by scripts/observe.sh): prints each alert as it arrives.

    python3 tests/py/webhook_receiver.py --port 9095
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 4 * 1024 * 1024
MAX_KEPT = 10_000


class WebhookReceiver:
    """Collects Alertmanager webhook notifications; `notifications` is a list of (path, body)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, echo: bool = False):
        self.notifications: list[tuple[str, dict]] = []
        # (path, headers, raw body) of every request, for checks of signatures and bytes
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self.send_response(413)
                    self.end_headers()
                    return
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver._record(self.path, body, {k.lower(): v for k, v in self.headers.items()}, raw)
                self.send_response(200)
                self.end_headers()

            def log_message(self, fmt, *args):  # keep test output clean
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.echo = echo

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _record(self, path: str, body: dict, headers: dict[str, str] | None = None, raw: bytes = b"") -> None:
        with self._lock:
            if len(self.notifications) < MAX_KEPT:
                self.notifications.append((path, body))
                self.requests.append((path, headers or {}, raw))
        if self.echo:
            for alert in body.get("alerts", []):
                labels = alert.get("labels", {})
                ann = alert.get("annotations", {})
                print(f"[{path}] {alert.get('status', '?').upper()} {labels.get('alertname')} "
                      f"severity={labels.get('severity')} event={labels.get('event')} model={labels.get('model')} "
                      f"feature={labels.get('feature', '-')}\n    {ann.get('description', '')}\n"
                      f"    -> {ann.get('recommendation', '')}\n    runbook: {ann.get('runbook_url', '')}", flush=True)

    def alerts(self, path: str | None = None) -> list[tuple[str, dict]]:
        """(path, alert) for every alert received, optionally only on one path."""
        with self._lock:
            items = list(self.notifications)
        return [(p, a) for p, body in items if path is None or p == path for a in body.get("alerts", [])]

    def start(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9095)
    args = parser.parse_args()
    receiver = WebhookReceiver(port=args.port, echo=True)
    print(f"webhook receiver listening on {receiver.url}", flush=True)
    try:
        receiver._server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
