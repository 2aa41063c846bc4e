// mlmon status page: reads the admin API of the same origin every few seconds and draws
// what it finds. No library, no network access beyond /api/v1 (docs/status-page.md).
// Everything that came from traffic (model and feature names, values) is inserted as text,
// never as markup.
'use strict';
(function () {
  const TOKEN_KEY = 'mlmon.admin_token';
  const params = new URLSearchParams(location.search);
  const REFRESH_MS = Math.max(1, Number(params.get('refresh')) || 5) * 1000;
  const STATUS_ICON = { healthy: '✓', ok: '✓', warning: '▲', critical: '✖', unknown: '?' };
  const RANK = { critical: 2, warning: 1, ok: 0, healthy: 0 };
  const DASHES = ['', '7 4', '2 3', '9 3 2 3', '4 4', '1 2', '12 4', '6 2 1 2'];
  const $ = (id) => document.getElementById(id);

  let token = sessionStorage.getItem(TOKEN_KEY);
  let paused = false;
  let timer = null;
  let refreshes = 0;
  let selected = null;
  const histories = new Map();

  class AuthError extends Error {}

  // ---- DOM helpers ------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const SVG = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  // Colours go through the CSSOM: the page's CSP allows no inline style attribute.
  function paint(e, prop, value) { e.style.setProperty(prop, value); return e; }
  function replace(node, ...children) { node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined)); }
  function badge(status) {
    const st = status || 'unknown';
    return h('span', { class: 'badge ' + st, 'data-status': st }, (STATUS_ICON[st] || '?') + ' ' + st);
  }
  const fin = (v) => typeof v === 'number' && isFinite(v);
  function num(v, digits) {
    if (!fin(v)) return '–';
    const a = Math.abs(v);
    if (digits !== undefined) return v.toFixed(digits);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
    return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toFixed(4);
  }
  const pct = (v) => (fin(v) ? (v * 100).toFixed(v < 0.01 ? 3 : 2) + ' %' : '–');
  const ms = (v) => (fin(v) ? (v * 1000).toFixed(1) + ' ms' : '–');
  const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });
  const empty = (text) => h('p', { class: 'empty' }, text);

  // ---- API ----------------------------------------------------------------------------------
  async function api(path) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    const r = await fetch(path, { headers, cache: 'no-store', credentials: 'omit' });
    if (r.status === 401) throw new AuthError('the API asks for the admin token');
    let body = null;
    try { body = await r.json(); } catch (_) { body = null; }
    if (!r.ok) throw new Error(path + ': ' + r.status + (body && body.error ? ' ' + body.error : ''));
    return body;
  }
  const m = (model) => '/api/v1/models/' + encodeURIComponent(model);

  // ---- token ----------------------------------------------------------------------------------
  function showAuth(refused) {
    document.body.dataset.state = 'auth';
    $('auth').hidden = false;
    $('models-sec').hidden = true;
    $('detail').hidden = true;
    $('auth-error').hidden = !refused;
    $('auth-error').textContent = refused ? 'The API refused this token.' : '';
    $('updated').textContent = 'Waiting for the admin token';
    if (document.activeElement === document.body || !document.activeElement) $('token').focus();
  }
  function hideAuth() {
    $('auth').hidden = true;
    $('models-sec').hidden = false;
    $('forget').hidden = !token;
  }

  // ---- charts -----------------------------------------------------------------------------------
  // series: [{name, values}] aligned with t; limits: {warning, critical} drawn as dashed lines;
  // band: {lo, hi} arrays shaded around the series (sampling error).
  function chart(fig, opts) {
    const W = 640, H = 190, L = 58, R = 10, T = 10, B = 24;
    const t = opts.t || [];
    const scale = opts.scale || 1;
    const vals = [];
    for (const se of opts.series) for (const v of se.values) if (fin(v)) vals.push(v * scale);
    const limits = [];
    if (opts.limits) {
      for (const lv of ['warning', 'critical']) {
        if (fin(opts.limits[lv])) limits.push({ level: lv, v: opts.limits[lv] * scale });
      }
    }
    const caption = h('figcaption', {}, opts.title);
    if (t.length < 1 || vals.length === 0) {
      replace(fig, caption, empty('No data yet.'));
      return;
    }
    const dMin = Math.min(...vals), dMax = Math.max(...vals);
    // A threshold far above the data would flatten it: such lines are named in the legend only.
    const drawn = limits.filter((l) => fin(opts.max) || dMax <= 0 || l.v <= dMax * 3);
    let lo, hi;
    if (opts.fit) {
      const pad = Math.max((dMax - dMin) * 0.15, Math.abs(dMax) * 0.02, 1e-9);
      lo = dMin - pad; hi = dMax + pad;
    } else {
      lo = fin(opts.min) ? opts.min * scale : Math.min(0, dMin);
      hi = fin(opts.max) ? opts.max * scale : Math.max(dMax, ...drawn.map((l) => l.v)) * 1.08;
    }
    if (!(hi > lo)) hi = lo + 1;
    const t0 = t[0], t1 = t[t.length - 1] > t0 ? t[t.length - 1] : t0 + 1;
    const x = (tt) => L + ((tt - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - (Math.min(Math.max(v, lo), hi) - lo) / (hi - lo)) * (H - T - B);
    const fmt = opts.fmt || ((v) => num(v));
    const latest = opts.series.map((se) => {
      for (let i = se.values.length - 1; i >= 0; i--) if (fin(se.values[i])) return se.name + ' ' + fmt(se.values[i] * scale);
      return se.name + ' no data';
    });
    const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': opts.title + ', ' + clock(t0) + ' to ' + clock(t1) + '; latest: ' + latest.join(', ') });
    svg.append(s('title', {}, opts.title + ' — latest: ' + latest.join(', ')));
    for (const f of [0, 0.5, 1]) {
      const v = lo + f * (hi - lo);
      svg.append(s('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      svg.append(s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(Number(v.toPrecision(3)))));
    }
    svg.append(s('text', { x: L, y: H - 6 }, clock(t0)));
    svg.append(s('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, clock(t1)));
    for (const l of drawn) {
      svg.append(s('line', { class: 'limit ' + l.level, x1: L, x2: W - R, y1: y(l.v), y2: y(l.v) }));
      svg.append(s('text', { x: W - R - 2, y: y(l.v) - 3, 'text-anchor': 'end' }, l.level));
    }
    if (opts.band) {
      const pts = [];
      for (let i = 0; i < t.length; i++) if (fin(opts.band.hi[i])) pts.push(x(t[i]) + ',' + y(opts.band.hi[i] * scale));
      for (let i = t.length - 1; i >= 0; i--) if (fin(opts.band.lo[i])) pts.push(x(t[i]) + ',' + y(opts.band.lo[i] * scale));
      if (pts.length > 2) svg.append(paint(s('polygon', { class: 'band', points: pts.join(' ') }), 'fill', 'var(--s2)'));
    }
    const legend = h('ul', { class: 'legend' });
    opts.series.forEach((se, k) => {
      const colour = `var(--s${(k % 8) + 1})`;
      const dash = DASHES[k % DASHES.length];
      let run = [];
      const flush = () => {
        if (run.length === 1) svg.append(paint(s('circle', { cx: run[0][0], cy: run[0][1], r: 2.5 }), 'fill', colour));
        else if (run.length > 1) svg.append(paint(s('polyline', { points: run.map((p) => p.join(',')).join(' '), 'stroke-dasharray': dash || null }), 'stroke', colour));
        run = [];
      };
      for (let i = 0; i < t.length; i++) {
        const v = se.values[i];
        if (fin(v)) run.push([x(t[i]).toFixed(1), y(v * scale).toFixed(1)]);
        else flush();
      }
      flush();
      const sample = s('svg', { width: 26, height: 10, 'aria-hidden': 'true' },
        paint(s('line', { x1: 0, x2: 26, y1: 5, y2: 5, 'stroke-width': 2.5, 'stroke-dasharray': dash || null }), 'stroke', colour));
      legend.append(h('li', {}, sample, latest[k]));
    });
    for (const l of limits) {
      const sample = s('svg', { width: 26, height: 10, 'aria-hidden': 'true' },
        s('line', { class: 'limit ' + l.level, x1: 0, x2: 26, y1: 5, y2: 5, 'stroke-width': 2 }));
      legend.append(h('li', {}, sample, l.level + ' at ' + fmt(l.v) + (drawn.includes(l) ? '' : ' (above the chart)')));
    }
    replace(fig, caption, svg, legend);
  }

  // ---- history (incremental) ------------------------------------------------------------------
  const SERIES = ['t', 'health', 'drift_score', 'p50', 'p95', 'p99', 'requests', 'errors', 'anomaly_rate',
    'quality', 'realized', 'estimated', 'estimated_error'];
  async function loadHistory(model) {
    const old = histories.get(model);
    const since = old && old.t.length ? old.t[old.t.length - 1] : null;
    const d = await api(m(model) + '/history' + (since !== null ? '?since=' + since : ''));
    if (!old || since === null) { d.psi = d.psi || {}; histories.set(model, d); return d; }
    const n0 = old.t.length, n1 = (d.t || []).length;
    for (const k of SERIES) old[k] = old[k].concat(d[k] || []);
    const psi = d.psi || {};
    for (const f of Object.keys(psi)) if (!old.psi[f]) old.psi[f] = new Array(n0).fill(null);
    for (const f of Object.keys(old.psi)) old.psi[f] = old.psi[f].concat(psi[f] || new Array(n1).fill(null));
    for (const k of Object.keys(d)) if (!SERIES.includes(k) && k !== 'psi') old[k] = d[k];
    // Keep what the server keeps: the retention window.
    const cut = old.t.length ? old.t[old.t.length - 1] - (old.retention_seconds || 3600) : 0;
    let drop = 0;
    while (drop < old.t.length && old.t[drop] < cut) drop++;
    if (drop > 0) {
      for (const k of SERIES) old[k] = old[k].slice(drop);
      for (const f of Object.keys(old.psi)) {
        old.psi[f] = old.psi[f].slice(drop);
        if (!old.psi[f].some(fin)) delete old.psi[f];
      }
    }
    return old;
  }

  // ---- sections ---------------------------------------------------------------------------------
  function renderModels(models) {
    const body = $('models').tBodies[0];
    if (!models.length) {
      replace(body, h('tr', {}, h('td', { colspan: 7 }, 'No model yet: send traffic through the proxy or load a baseline.')));
      return;
    }
    replace(body, models.map((mo) => {
      const errs = mo.checks ? mo.checks.find((c) => c.check === 'error_rate') : null;
      const anom = mo.checks ? mo.checks.find((c) => c.check === 'anomaly_rate') : null;
      const reasons = (mo.reasons || []).map((r) => r.check.replace('_', ' ')).join(', ');
      const current = mo.model === selected;
      return h('tr', { 'data-model': mo.model, 'aria-current': current ? 'true' : null },
        h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link', 'data-key': 'model:' + mo.model, 'aria-pressed': current ? 'true' : 'false',
          onclick: () => select(mo.model) }, mo.model)),
        h('td', {}, badge(mo.status)),
        h('td', { class: 'num' }, mo.drift ? num(mo.drift.score, 2) : '–'),
        h('td', { class: 'num' }, mo.latency ? ms(mo.latency.p95) : '–'),
        h('td', { class: 'num' }, errs ? pct(errs.value) : '–'),
        h('td', { class: 'num' }, anom ? pct(anom.value) : '–'),
        h('td', {}, reasons || 'none'));
    }));
  }

  function renderHealth(mo) {
    const reasons = mo.reasons || [];
    const list = reasons.length
      ? h('ul', { class: 'reasons' }, reasons.map((r) => h('li', {},
        h('strong', {}, r.check.replace('_', ' ')), ' ', badge(r.status), ' ', r.message,
        r.recommendation ? h('details', { 'data-key': 'why:' + r.check }, h('summary', { 'data-key': 'why-s:' + r.check }, 'What to check'), h('p', {}, r.recommendation)) : null)))
      : h('p', {}, 'No check is at its warning level.');
    const checks = h('table', {},
      h('caption', { class: 'sr' }, 'Every health check'),
      h('thead', {}, h('tr', {}, ['Check', 'Status', 'Value', 'Warning at', 'Critical at', 'Measured'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, (mo.checks || []).map((c) => h('tr', {},
        h('th', { scope: 'row' }, c.check.replace('_', ' ')), h('td', {}, badge(c.status)),
        h('td', { class: 'num' }, num(c.value)), h('td', { class: 'num' }, num(c.warning)),
        h('td', { class: 'num' }, num(c.critical)), h('td', {}, c.message)))));
    replace($('health'), h('p', {}, 'Status: ', badge(mo.status)), list,
      h('details', { 'data-key': 'checks' }, h('summary', { 'data-key': 'checks-s' }, 'All checks'), h('div', { class: 'scroll' }, checks)));
  }

  function renderDrift(report, hist) {
    const body = $('drift').tBodies[0];
    const th = hist.thresholds || {};
    chart($('chart-drift'), { title: 'Model drift score (share of features drifted)', t: hist.t,
      series: [{ name: 'drift score', values: hist.drift_score }], limits: th.drift_score, min: 0, max: 1, fmt: (v) => num(v, 2) });
    const lastPsi = (f) => { const a = hist.psi[f]; for (let i = a.length - 1; i >= 0; i--) if (fin(a[i])) return a[i]; return -1; };
    const top = Object.keys(hist.psi || {}).sort((a, b) => lastPsi(b) - lastPsi(a)).slice(0, 5);
    chart($('chart-psi'), { title: 'PSI of the most drifted features', t: hist.t,
      series: top.map((f) => ({ name: f, values: hist.psi[f] })), limits: th.psi, min: 0 });
    if (!report) {
      replace(body, h('tr', {}, h('td', { colspan: 9 }, hist.baseline_capture_pending
        ? 'No baseline yet: it is being captured from live traffic.' : 'No baseline: drift is measured against one.')));
      return;
    }
    const rows = [...report.features].sort((a, b) => ((RANK[b.status] ?? -1) - (RANK[a.status] ?? -1)) || ((b.psi ?? -1) - (a.psi ?? -1)));
    replace(body, rows.map((f) => h('tr', { 'data-feature': f.feature, 'data-status': f.status || 'unknown' },
      h('th', { scope: 'row' }, f.feature, f.kind === 'output' ? ' (prediction)' : '', h('span', { class: 'sr' }, ', ' + f.type)),
      h('td', {}, badge(f.status)),
      h('td', { class: 'num' }, num(f.psi)), h('td', { class: 'num' }, num(f.ks_statistic)),
      h('td', { class: 'num' }, num(f.ks_pvalue)), h('td', { class: 'num' }, num(f.wasserstein)),
      h('td', { class: 'num' }, num(f.js_divergence)), h('td', { class: 'num' }, num(f.chi2_pvalue)),
      h('td', { class: 'num' }, f.window ? f.window.count : '–'))));
  }

  function renderLatency(hist, mo) {
    const th = hist.thresholds || {};
    chart($('chart-latency'), { title: 'Latency over the window (ms)', t: hist.t, scale: 1000,
      series: [{ name: 'p50', values: hist.p50 }, { name: 'p95', values: hist.p95 }, { name: 'p99', values: hist.p99 }],
      limits: th.latency_p95_seconds, min: 0, fmt: (v) => v.toFixed(1) });
    const rate = hist.t.map((_, i) => (hist.requests[i] > 0 ? hist.errors[i] / hist.requests[i] : null));
    chart($('chart-errors'), { title: 'Error rate (5xx and upstream failures)', t: hist.t,
      series: [{ name: 'error rate', values: rate }], limits: th.error_rate, min: 0, fmt: pct });
    void mo;
  }

  function renderQuality(hist, quality) {
    const th = hist.thresholds || {};
    chart($('chart-quality'), { title: 'Data quality score', t: hist.t, series: [{ name: 'quality', values: hist.quality }],
      limits: th.data_quality, min: 0, max: 1, fmt: (v) => num(v, 2) });
    chart($('chart-anomaly'), { title: 'Anomaly rate', t: hist.t, series: [{ name: 'anomaly rate', values: hist.anomaly_rate }],
      limits: th.anomaly_rate, min: 0, fmt: pct });
    if (!quality) { replace($('quality'), empty('No data quality state yet.')); return; }
    const bad = quality.features.filter((f) => f.problem_ratio > 0 || f.missing_ratio > 0);
    replace($('quality'), h('p', {}, 'Score ', h('strong', {}, num(quality.score, 3)), ' over ', quality.rows, ' rows in the window.'),
      bad.length ? h('div', { class: 'scroll' }, h('table', {},
        h('caption', { class: 'sr' }, 'Features with data quality problems'),
        h('thead', {}, h('tr', {}, ['Feature', 'Missing', 'Out of range', 'Outliers', 'Type mismatch', 'Unseen category'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, bad.map((f) => h('tr', {}, h('th', { scope: 'row' }, f.feature),
          h('td', { class: 'num' }, pct(f.missing_ratio)), h('td', { class: 'num' }, pct(f.out_of_range_ratio)),
          h('td', { class: 'num' }, pct(f.outlier_ratio)), h('td', { class: 'num' }, pct(f.type_mismatch_ratio)),
          h('td', { class: 'num' }, pct(f.unseen_category_ratio)))))))
        : h('p', {}, 'No feature has missing, out-of-range or mistyped values in the window.'));
  }

  function renderAnomalies(a) {
    if (!a) { replace($('anomalies'), empty('No anomaly scoring: it needs a baseline.')); return; }
    const trend = { '-1': 'falling', 0: 'steady', 1: 'rising' }[String(a.trend ? a.trend.direction : 0)] || 'steady';
    const head = h('p', {}, 'Rate ', h('strong', {}, pct(a.window.rate)), ` (${a.window.anomalies} of ${a.window.rows} rows), trend ${trend}. `,
      a.values_included ? 'Feature values are shown (privacy.log_values is on).' : 'Feature values are withheld (privacy.log_values is off).');
    if (!a.anomalies.length) { replace($('anomalies'), head, empty('No anomalous row in the ring.')); return; }
    const cols = ['Time', 'Score', 'Reasons', 'Features that explain it'];
    replace($('anomalies'), head, h('div', { class: 'scroll' }, h('table', {},
      h('caption', { class: 'sr' }, 'Most recent anomalous rows'),
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, a.anomalies.slice(0, 10).map((r) => h('tr', {},
        h('td', {}, new Date(r.timestamp).toLocaleTimeString([], { hour12: false })),
        h('td', { class: 'num' }, num(r.score, 2)),
        h('td', {}, (r.reasons || []).join(', ')),
        h('td', {}, (r.explanation || []).slice(0, 3).map((c) =>
          c.feature + ' (z ' + num(c.z, 1) + (c.value !== undefined ? ', value ' + JSON.stringify(c.value) : '') + ')').join('; '))))))));
  }

  function renderPerformance(hist, p) {
    const metric = hist.metric || 'accuracy';
    const lo = hist.estimated.map((v, i) => (fin(v) && fin(hist.estimated_error[i]) ? v - 2 * hist.estimated_error[i] : null));
    const hi = hist.estimated.map((v, i) => (fin(v) && fin(hist.estimated_error[i]) ? v + 2 * hist.estimated_error[i] : null));
    chart($('chart-perf'), { title: `Realized vs estimated ${metric} (band: ±2 standard errors of the estimate)`, t: hist.t,
      series: [{ name: 'realized (ground truth)', values: hist.realized }, { name: 'estimated (no labels)', values: hist.estimated }],
      band: { lo, hi }, fit: true, fmt: (v) => num(v, 3) });
    if (!p) { replace($('performance'), empty('No predictions or ground truth yet.')); return; }
    const rows = [];
    if (p.classification || p.estimated) {
      const c = p.classification || {}, e = p.estimated || {}, se = e.sampling_error || {};
      for (const k of ['accuracy', 'precision', 'recall', 'f1', 'specificity', 'roc_auc']) {
        rows.push(h('tr', {}, h('th', { scope: 'row' }, k), h('td', { class: 'num' }, num(c[k], 4)),
          h('td', { class: 'num' }, num(e[k], 4) + (fin(se[k]) ? ' ± ' + num(se[k], 4) : ''))));
      }
    }
    if (p.regression) {
      for (const k of ['mae', 'rmse', 'r2']) rows.push(h('tr', {}, h('th', { scope: 'row' }, k), h('td', { class: 'num' }, num(p.regression[k], 4)), h('td', {}, '–')));
    }
    const fb = p.feedback || {};
    replace($('performance'), h('div', { class: 'scroll' }, h('table', {},
      h('caption', { class: 'sr' }, 'Performance over the window'),
      h('thead', {}, h('tr', {}, ['Metric', 'Realized (ground truth)', 'Estimated (no labels)'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows))),
    h('p', {}, `Task ${p.task || 'unknown'}; ground truth matched in the window: ${fb.matched_in_window ?? 0}; predictions waiting for it: ${fb.pending_predictions ?? 0}.`));
  }

  function renderImportance(hist, imp) {
    const ex = hist.explain || {};
    if (!imp) {
      replace($('importance'), empty(ex.enabled ? 'Not computed yet: it needs explain.min_rows recent rows of proxied traffic.'
        : 'Off: set explain.interval to compute permutation importance.'));
      return;
    }
    const max = Math.max(...imp.features.map((f) => Math.abs(f.importance)), 1e-12);
    replace($('importance'), h('p', {}, `Method ${imp.method}, ${imp.rows} rows, computed ${clock(imp.computed_at)}.`),
      h('table', {}, h('caption', { class: 'sr' }, 'Feature importance, largest first'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Feature'), h('th', { scope: 'col' }, 'Importance'))),
        h('tbody', {}, [...imp.features].sort((a, b) => b.importance - a.importance).map((f) => h('tr', {},
          h('th', { scope: 'row' }, f.feature),
          h('td', {}, h('span', { class: 'bar', style: null, 'data-w': (Math.max(0, f.importance) / max * 100).toFixed(1), 'aria-hidden': 'true' }), num(f.importance, 4)))))));
    // CSP forbids inline style attributes: widths are set through the CSSOM.
    for (const b of $('importance').querySelectorAll('.bar')) b.style.width = (Number(b.dataset.w) * 2) + 'px';
  }

  function renderBaseline(hist) {
    const b = hist.baseline;
    const th = hist.thresholds || {};
    const kv = (pairs) => h('dl', { class: 'kv' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    const lvl = (l, f) => (l ? `warning ${f(l.warning)}, critical ${f(l.critical)}` : 'not used');
    const base = b ? kv([['Id', b.id], ['Rows', String(b.rows)], ['Built at', b.created_at || 'unknown'],
      ['Source', b.source || '–'], ['Model version', b.model_version || '–'], ['Features', String(b.features)]])
      : empty(hist.baseline_capture_pending ? `Being captured from live traffic (${hist.baseline_capture_pending} rows to go).` : 'No baseline loaded.');
    const thr = kv([
      ['PSI', lvl(th.psi, (v) => num(v))], ['JS divergence', lvl(th.js_divergence, (v) => num(v))],
      ['KS statistic', lvl(th.ks_statistic, (v) => num(v))], ['Drift score', lvl(th.drift_score, (v) => num(v))],
      ['Latency p95', lvl(th.latency_p95_seconds, ms)], ['SLA', `${ms(th.sla_latency_seconds)} at quantile ${th.sla_quantile}`],
      ['Error rate', lvl(th.error_rate, pct)], ['Anomaly rate', lvl(th.anomaly_rate, pct)],
      ['Data quality', lvl(th.data_quality, (v) => num(v))], ['Performance drop', lvl(th.performance_drop, pct)],
      ['Adaptive drift thresholds', th.drift_adaptive ? 'on' : 'off'], ['Window', `${hist.window_seconds} s`],
      ['Chart history', `${Math.round((hist.retention_seconds || 3600) / 60)} min, a point every ${hist.interval_seconds} s`]]);
    replace($('baseline'), h('div', { class: 'cols' }, h('div', {}, h('h4', {}, 'Baseline in use'), base), h('div', {}, h('h4', {}, 'Thresholds'), thr)));
  }

  // ---- refresh loop -------------------------------------------------------------------------------
  async function renderDetail(mo) {
    const model = mo.model;
    const hist = await loadHistory(model);
    const av = hist.available || {};
    const get = (on, path) => (on ? api(m(model) + path) : Promise.resolve(null));
    const [drift, quality, anomalies, importance] = await Promise.all([
      get(av.drift, '/drift'), get(av.quality, '/quality'), get(av.anomalies, '/anomalies?limit=10'), get(av.importance, '/importance')]);
    if (model !== selected) return;
    $('detail').hidden = false;
    $('detail-h').textContent = 'Model ' + model;
    renderHealth(mo);
    renderDrift(drift, hist);
    renderLatency(hist, mo);
    renderQuality(hist, quality);
    renderAnomalies(anomalies);
    renderPerformance(hist, mo.performance);
    renderImportance(hist, importance);
    renderBaseline(hist);
  }

  // Re-rendering replaces elements: keep what the user opened and where the focus is.
  function keep() {
    const open = new Set([...document.querySelectorAll('details[open][data-key]')].map((d) => d.dataset.key));
    const focus = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
    return () => {
      for (const d of document.querySelectorAll('details[data-key]')) if (open.has(d.dataset.key)) d.open = true;
      if (focus) {
        const e = [...document.querySelectorAll('[data-key]')].find((x) => x.dataset.key === focus);
        if (e && e !== document.activeElement) e.focus();
      }
    };
  }

  async function refresh() {
    clearTimeout(timer);
    const restore = keep();
    try {
      const { models } = await api('/api/v1/models');
      hideAuth();
      $('notice').hidden = true;
      const names = models.map((x) => x.model);
      if (!selected || !names.includes(selected)) {
        const fromHash = decodeURIComponent(location.hash.replace(/^#model=/, ''));
        selected = names.includes(fromHash) ? fromHash : (names[0] || null);
      }
      renderModels(models);
      const mo = models.find((x) => x.model === selected);
      if (mo) await renderDetail(mo);
      else $('detail').hidden = true;
      restore();
      refreshes++;
      document.body.dataset.state = 'ready';
      document.body.dataset.refreshes = String(refreshes);
      $('updated').textContent = 'Updated ' + new Date().toLocaleTimeString([], { hour12: false }) +
        (paused ? ' (paused)' : `, every ${REFRESH_MS / 1000} s`);
    } catch (e) {
      if (e instanceof AuthError) {
        showAuth(Boolean(token));
        return; // no timer: waiting for the token
      }
      $('notice').hidden = false;
      $('notice').textContent = 'Could not refresh: ' + e.message;
    }
    if (!paused) timer = setTimeout(refresh, REFRESH_MS);
  }

  function select(model) {
    selected = model;
    history.replaceState(null, '', '#model=' + encodeURIComponent(model));
    refresh();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('auth-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      token = $('token').value.trim();
      $('token').value = '';
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      refresh();
    });
    $('forget').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      token = null;
      histories.clear();
      refresh();
    });
    $('pause').addEventListener('click', () => {
      paused = !paused;
      $('pause').setAttribute('aria-pressed', String(paused));
      $('pause').textContent = paused ? 'Resume refresh' : 'Pause refresh';
      if (paused) clearTimeout(timer);
      refresh();
    });
    refresh();
  });
})();
