"""A minimal W3C WebDriver client for Debian's headless Chromium (`chromium` + `chromium-driver`),
standard library only: the status page's browser test (test_status_page.py) and
`make screenshot` (scripts/status_screenshot.py).

chromedriver is the one from the Debian package (`/usr/bin/chromedriver`, matching
`/usr/bin/chromium`): nothing is downloaded. Chromium runs with the flags that keep it off the
network (no component updates, sync, QUIC or background requests) and a fresh profile
directory, so it only ever talks to the 127.0.0.1 addresses a test gives it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("MLMON_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MLMON_CHROMEDRIVER", "/usr/bin/chromedriver")

# Without these Chromium phones home (updates, sync, field trials) on a closed network.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--disable-default-apps", "--disable-extensions",
    "--no-default-browser-check", "--hide-scrollbars", "--force-device-scale-factor=1",
    "--metrics-recording-only", "--disable-breakpad",
]

ELEMENT = "element-6066-11e4-a52e-4f735466cecc"


class WebDriverError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """One headless Chromium session through chromedriver. Use as a context manager."""

    def __init__(self, width: int = 1280, height: int = 1600, log_dir: Path | None = None):
        self.width, self.height = width, height
        self.profile = Path(tempfile.mkdtemp(prefix="mlmon-chromium-"))
        self.log_dir = Path(log_dir) if log_dir else self.profile
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.driver: subprocess.Popen | None = None
        self.session: str | None = None

    # --- process --------------------------------------------------------------------------
    def __enter__(self) -> "Browser":
        for exe in (CHROMIUM, CHROMEDRIVER):
            if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
                raise WebDriverError(f"{exe} not found: install the Debian packages chromium and "
                                     f"chromium-driver (scripts/test-env.sh does)")
        log = open(self.log_dir / "chromedriver.log", "wb")
        self.driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}", "--allowed-ips=127.0.0.1", "--allowed-origins=*"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self._call("GET", "/status").get("ready"):
                    break
            except (OSError, WebDriverError):
                pass
            if self.driver.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise WebDriverError("chromedriver did not start: see " + str(self.log_dir / "chromedriver.log"))
            time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": CHROMIUM_FLAGS + [f"--user-data-dir={self.profile / 'profile'}",
                                          f"--window-size={self.width},{self.height}"],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"pageLoad": 30000, "script": 30000, "implicit": 0},
        }}}
        try:
            value = self._call("POST", "/session", caps, timeout=60)
        except Exception:
            self.close()
            raise
        self.session = value["sessionId"]
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.session:
            try:
                self._call("DELETE", f"/session/{self.session}", timeout=20)
            except Exception:
                pass
            self.session = None
        if self.driver is not None:
            if self.driver.poll() is None:
                try:
                    os.killpg(self.driver.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.driver.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.driver.pid, signal.SIGKILL)
                    self.driver.wait(timeout=10)
            self.driver = None
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- protocol -------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict | None = None, timeout: float = 30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=timeout) as r:
                payload = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                payload = json.loads(e.read() or b"{}")
            except ValueError:
                payload = {}
            raise WebDriverError(f"{method} {path}: {e.code} {payload.get('value', payload)}") from None
        return payload.get("value", payload)

    def _s(self, method: str, path: str, body: dict | None = None, timeout: float = 30):
        return self._call(method, f"/session/{self.session}{path}", body, timeout)

    def get(self, url: str) -> None:
        self._s("POST", "/url", {"url": url}, timeout=60)

    def execute(self, script: str, *args):
        """Runs `script` (a function body; `arguments` holds `args`) and returns its value."""
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css: str) -> dict | None:
        found = self._s("POST", "/elements", {"using": "css selector", "value": css})
        return found[0] if found else None

    def click(self, element: dict) -> None:
        self._s("POST", f"/element/{element[ELEMENT]}/click", {})

    def type(self, element: dict, text: str) -> None:
        self._s("POST", f"/element/{element[ELEMENT]}/value", {"text": text})

    def keys(self, text: str) -> None:
        """Types `text` into whatever has the focus (as a keyboard user would)."""
        actions = [a for c in text for a in ({"type": "keyDown", "value": c}, {"type": "keyUp", "value": c})]
        self._s("POST", "/actions", {"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})
        self._s("DELETE", "/actions")

    def console(self) -> list[dict]:
        """Browser log entries since the last call (`level`, `message`, `source`)."""
        return self._s("POST", "/se/log", {"type": "browser"})

    def wait(self, script: str, timeout: float, what: str, *args, poll: float = 0.5):
        """Polls `script` until it returns a truthy value; returns it."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.execute(script, *args)
            if last:
                return last
            time.sleep(poll)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last value {last!r})")

    def fit_to_page(self, max_height: int = 6000) -> int:
        """Resizes the window to the document's height (at most `max_height`) for a
        screenshot of the whole page; returns the height."""
        height = self.height
        for _ in range(3):
            page, chrome = self.execute("return [Math.ceil(document.documentElement.scrollHeight), "
                                        "window.outerHeight - window.innerHeight]")
            height = max(300, min(int(page) + max(int(chrome), 0), max_height))
            self._s("POST", "/window/rect", {"width": self.width, "height": height})
            if self.execute("return window.innerHeight >= document.documentElement.scrollHeight"):
                break
        return height

    def screenshot(self, path: Path) -> Path:
        png = base64.b64decode(self._s("GET", "/screenshot", timeout=60))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        return path
