"""The status page (`GET /` on the admin port, docs/status-page.md) in a real browser: Debian's
headless Chromium driven over WebDriver (tests/py/webdriver.py) against `mlmon demo`.

- Without a token: the page loads with no console error, lists the demo model, shows its
  features' drift with statuses readable as text, draws its charts, and the drifted features
  (income, debt_ratio) turn critical once the demo's drift starts; a screenshot is saved.
- With `--admin-token`: the page asks for the token, says so when a wrong one is given, and
  shows the data once the right one is typed (by keyboard); the token lives in the tab's
  session storage only.

`make screenshot` (scripts/status_screenshot.py) uses the same browser set-up to regenerate
docs/status-page.png.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from helpers import ManagedProcess, free_port, wait_http_ok
from webdriver import Browser

DRIFT_AFTER = 20
# A 401 answer is logged by Chromium as a failed resource load; the page expects it while it
# waits for the token. Anything else at SEVERE level is a failure.
UNAUTHORIZED = "the server responded with a status of 401"


def start_demo(log_dir: Path, mlmon_bin: Path, *extra: str) -> tuple[ManagedProcess, str, float]:
    admin = f"127.0.0.1:{free_port()}"
    proc = ManagedProcess.launch("mlmon-demo", [
        str(mlmon_bin), "demo", "--duration", "600", "--drift-after", str(DRIFT_AFTER), "--rps", "20",
        "--listen", f"127.0.0.1:{free_port()}", "--admin-listen", admin, *extra], log_dir)
    started = time.monotonic()
    wait_http_ok(f"http://{admin}/healthz", timeout=60, proc=proc)
    return proc, f"http://{admin}", started


def severe(entries: list[dict], allowed: tuple[str, ...] = ()) -> list[dict]:
    return [e for e in entries if e.get("level") == "SEVERE" and not any(a in e.get("message", "") for a in allowed)]


def feature_statuses(b: Browser) -> dict[str, dict]:
    """Feature → its drift row, in the table's order."""
    rows = b.execute("""
        return [...document.querySelectorAll('#drift tbody tr[data-feature]')].map((tr) =>
          [tr.dataset.feature, {status: tr.dataset.status, text: tr.cells[1].textContent,
                                rows: Number(tr.cells[8].textContent) || 0}]);""")
    return dict((name, row) for name, row in rows)


def test_page_shows_the_demo_model_and_its_drift_turning_critical(tmp_path, mlmon_bin):
    proc, admin, started = start_demo(tmp_path, mlmon_bin)
    try:
        with Browser(width=1280, height=1600, log_dir=tmp_path) as b:
            b.get(f"{admin}/?refresh=1")
            b.wait("return document.body.dataset.state === 'ready' && "
                   "document.querySelector('#models tbody tr[data-model=\"credit-risk\"]') !== null",
                   30, "the demo model in the models table")
            assert b.execute("return document.getElementById('auth').hidden") is True, "no token asked"
            # Before the drift: the drifted-to-be features have data and are not critical.
            before = b.wait("""
                const f = {};
                for (const tr of document.querySelectorAll('#drift tbody tr[data-feature]'))
                  f[tr.dataset.feature] = [tr.dataset.status, Number(tr.cells[8].textContent) || 0];
                return f.income && f.income[1] >= 100 && f.debt_ratio && f.debt_ratio[1] >= 100 ? f : null;""",
                            DRIFT_AFTER, "window data before the drift")
            elapsed = time.monotonic() - started
            assert elapsed < DRIFT_AFTER, f"saw the first window only {elapsed:.0f} s after start"
            assert before["income"][0] != "critical" and before["debt_ratio"][0] != "critical", before

            # After it: both critical, as text and icon, not only as colour.
            b.wait("""
                const s = (n) => { const tr = document.querySelector(`#drift tbody tr[data-feature="${n}"]`);
                                   return tr && tr.dataset.status; };
                return s('income') === 'critical' && s('debt_ratio') === 'critical';""",
                   150, "income and debt_ratio critical after the drift")
            statuses = feature_statuses(b)
            for name in ("income", "debt_ratio"):
                assert statuses[name]["text"].strip() == "✖ critical", statuses[name]
            assert set(statuses) >= {"income", "age", "debt_ratio", "num_accounts", "region"}, statuses
            # Worst first.
            order = list(statuses)
            rank = {"critical": 2, "warning": 1, "ok": 0}
            assert [rank.get(statuses[f]["status"], -1) for f in order] == sorted(
                (rank.get(statuses[f]["status"], -1) for f in order), reverse=True), statuses

            model_row = b.execute("""
                const tr = document.querySelector('#models tbody tr[data-model="credit-risk"]');
                return {health: tr.cells[1].textContent, reasons: tr.cells[6].textContent};""")
            assert model_row["health"].split()[-1] in ("warning", "critical"), model_row
            assert "drift" in model_row["reasons"], model_row
            # Charts are drawn from the history (SVG, by the page's own script).
            charts = b.execute("""
                return ['chart-drift', 'chart-psi', 'chart-latency', 'chart-errors', 'chart-quality',
                        'chart-anomaly', 'chart-perf']
                  .filter((id) => document.querySelector('#' + id + ' svg.chart polyline'));""")
            assert {"chart-drift", "chart-psi", "chart-latency"} <= set(charts), charts
            assert b.execute("return document.querySelector('#chart-psi svg').getAttribute('aria-label')").count("income") >= 1
            # Baseline and thresholds, importance (the demo turns explain on).
            baseline = b.execute("return document.getElementById('baseline').textContent")
            assert "5000" in baseline and "warning 0.1000, critical 0.2000" in baseline, baseline
            b.wait("return document.querySelectorAll('#importance tbody tr').length === 5", 30, "feature importance")
            # Keyboard: the model is a focusable control, and the refresh (every second here)
            # neither steals the focus nor closes what the user opened.
            assert b.execute("""const e = document.querySelector('#models tbody button');
                                e.focus(); return document.activeElement === e;""")
            b.execute("document.querySelector('details[data-key=\"checks\"]').open = true")
            n = int(b.execute("return Number(document.body.dataset.refreshes)"))
            b.wait("return Number(document.body.dataset.refreshes) >= arguments[0] + 2", 20, "two more refreshes", n)
            kept = b.execute("""return [document.activeElement && document.activeElement.dataset.key,
                                        document.querySelector('details[data-key="checks"]').open]""")
            assert kept == ["model:credit-risk", True], kept

            errors = severe(b.console())
            assert not errors, f"console errors: {errors}"
            b.fit_to_page()
            time.sleep(0.5)
            shot = b.screenshot(tmp_path / "status-page.png")
            assert shot.stat().st_size > 20_000
            if os.environ.get("MLMON_SCREENSHOT"):
                b.screenshot(Path(os.environ["MLMON_SCREENSHOT"]))
    finally:
        proc.stop()


def test_page_asks_for_the_token_and_shows_data_once_given(tmp_path, mlmon_bin):
    proc, admin, _ = start_demo(tmp_path, mlmon_bin, "--admin-token", "s3cret-token")
    try:
        with Browser(width=1280, height=1000, log_dir=tmp_path) as b:
            b.get(f"{admin}/?refresh=1")
            b.wait("return document.body.dataset.state === 'auth' && !document.getElementById('auth').hidden",
                   20, "the token form")
            assert b.execute("return document.getElementById('models-sec').hidden") is True
            assert b.execute("return document.activeElement && document.activeElement.id") == "token", \
                "the token field has the focus"
            # A wrong token: refused, said so.
            b.keys("not-it\ue007")
            b.wait("return !document.getElementById('auth-error').hidden", 10, "the refusal")
            # The right one, typed by keyboard into the focused field.
            b.execute("document.getElementById('token').focus()")
            b.keys("s3cret-token\ue007")
            b.wait("return document.body.dataset.state === 'ready' && "
                   "document.querySelector('#models tbody tr[data-model=\"credit-risk\"]') !== null",
                   30, "the data once the token is given")
            stored = b.execute("return [sessionStorage.getItem('mlmon.admin_token'), localStorage.length, document.cookie]")
            assert stored == ["s3cret-token", 0, ""], stored
            b.wait("return document.querySelectorAll('#drift tbody tr[data-feature]').length >= 5", 30, "drift rows")
            errors = severe(b.console(), allowed=(UNAUTHORIZED,))
            assert not errors, f"console errors: {errors}"
            b.screenshot(tmp_path / "status-page-token.png")
    finally:
        proc.stop()
