"""The HTML report's fixed parts: its Content-Security-Policy, style sheet, the two
scripts (errors recorded into the page; charts counted, tooltips) and the reading notes."""

from __future__ import annotations

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; font-src data:"
)

STYLE = """
:root { --ink:#1e293b; --muted:#64748b; --line:#e2e8f0; --bg:#f8fafc; --card:#fff;
        --blue:#2563eb; --red:#dc2626; --green:#16a34a; --amber:#d97706; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI","DejaVu Sans",sans-serif;
       color:var(--ink); background:var(--bg); }
header { padding:22px 32px 14px; background:#0f172a; color:#e2e8f0; }
header h1 { margin:0 0 4px; font-size:22px; color:#fff; }
header .meta { color:#94a3b8; font-size:13px; }
main { padding:20px 32px 40px; max-width:1320px; margin:0 auto; }
h2 { font-size:18px; margin:0; }
h3 { font-size:14px; margin:0 0 6px; color:var(--muted); font-weight:600; }
section.card { background:var(--card); border:1px solid var(--line); border-radius:10px;
               padding:18px 20px; margin:18px 0; box-shadow:0 1px 2px rgba(15,23,42,.04); }
.card-head { display:flex; align-items:baseline; gap:14px; flex-wrap:wrap; margin-bottom:12px; }
.chips { display:flex; gap:8px; flex-wrap:wrap; }
.chip { border:1px solid var(--line); border-radius:999px; padding:2px 10px; font-size:12.5px;
        background:#f1f5f9; white-space:nowrap; }
.chip.bad { background:#fef2f2; border-color:#fecaca; color:#991b1b; }
.chip.good { background:#f0fdf4; border-color:#bbf7d0; color:#166534; }
.chip.note { background:#fffbeb; border-color:#fde68a; color:#92400e; }
.grid { display:grid; grid-template-columns:repeat(2, minmax(0, 1fr)); gap:16px 22px; }
@media (max-width: 900px) { .grid { grid-template-columns:1fr; } }
figure { margin:0; }
svg.chart { width:100%; height:auto; display:block; }
svg .tick { font-size:11px; fill:#64748b; }
svg .axis-label { font-size:11.5px; fill:#475569; }
svg .legend { font-size:11.5px; fill:#334155; }
svg .value { font-size:10.5px; fill:#334155; }
svg .group, svg .bar-label { font-size:11.5px; fill:#1e293b; }
svg .ref { font-size:10.5px; fill:#b45309; }
svg .empty { font-size:13px; fill:#94a3b8; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { padding:6px 8px; border-bottom:1px solid var(--line); text-align:right;
         vertical-align:top; }
th { color:var(--muted); font-weight:600; background:#f8fafc; position:sticky; top:0; }
td.l, th.l { text-align:left; }
td.mono { font-family:"DejaVu Sans Mono",ui-monospace,monospace; font-size:12px; }
.sig { color:var(--red); font-weight:600; }
.ok { color:var(--green); }
.muted { color:var(--muted); }
.notes { color:var(--muted); font-size:12.5px; }
.notes li { margin:3px 0; }
#tip { position:fixed; pointer-events:none; background:#0f172a; color:#f8fafc; padding:4px 8px;
       border-radius:6px; font-size:12px; display:none; z-index:10; max-width:420px; }
"""

# Installed first, in <head>: everything that goes wrong is recorded in the DOM.
ERROR_CAPTURE = """
(function () {
  var errors = [];
  function record(message) {
    errors.push(String(message));
    var el = document.getElementById('console-errors');
    if (el) { el.textContent = errors.join('\\n'); }
  }
  window.__shadowErrors = errors;
  window.addEventListener('error', function (e) { record('error: ' + (e.message || e.type)); });
  window.addEventListener('unhandledrejection', function (e) { record('rejection: ' + e.reason); });
  document.addEventListener('securitypolicyviolation', function (e) {
    record('blocked by CSP: ' + e.blockedURI + ' (' + e.violatedDirective + ')');
  });
  var original = console.error;
  console.error = function () {
    record(Array.prototype.slice.call(arguments).join(' '));
    return original.apply(console, arguments);
  };
  document.addEventListener('DOMContentLoaded', function () {
    var el = document.getElementById('console-errors');
    if (el) { el.textContent = errors.join('\\n'); }
  });
})();
"""

# After the content: count the charts whose marks have a real size, and tooltips.
CHECK_AND_TOOLTIPS = """
(function () {
  var charts = document.querySelectorAll('svg.chart');
  var drawn = 0;
  charts.forEach(function (svg) {
    var marks = svg.querySelector('g.marks');
    if (!marks) { return; }
    var box = marks.getBBox();
    var rect = svg.getBoundingClientRect();
    if (box.width > 0 && box.height > 0 && rect.width > 0) { drawn += 1; }
  });
  document.body.setAttribute('data-charts-total', String(charts.length));
  document.body.setAttribute('data-charts-drawn', String(drawn));
  var tip = document.getElementById('tip');
  document.addEventListener('mousemove', function (e) {
    var target = e.target.closest ? e.target.closest('[data-tip]') : null;
    if (!target) { tip.style.display = 'none'; return; }
    tip.textContent = target.getAttribute('data-tip');
    tip.style.left = (e.clientX + 12) + 'px';
    tip.style.top = (e.clientY + 12) + 'px';
    tip.style.display = 'block';
  });
})();
"""

NOTES = """
<section class=card><h2>How to read this</h2><ul class=notes>
<li><b>Divergence</b>: share of compared response pairs where the challenger's answer differs
from the champion's (by the configured comparator). Intervals are 95% Wilson score intervals.</li>
<li><b>Noise floor</b>: the divergence of the <i>control</i> challenger, which re-runs the
champion itself (A/A). "Above noise floor" is the difference with a Newcombe hybrid-score
interval; significant when the interval excludes 0.</li>
<li><b>Slices</b>: divergence per request attribute value, ranked by the lower bound of its
interval; red = significantly above the challenger's other requests (one-sided two-proportion
z-test, Bonferroni-corrected over all slices tested).</li>
<li><b>Failure rate Δ</b>: challenger minus champion failure rate on the same requests
(paired; Newcombe's interval for paired proportions in the JSON/terminal report).</li>
<li><b>Latency</b>: successful responses only; distributions from t-digest sketches kept per
minute.</li>
<li>Each comparison counts once even if it was delivered twice (deduplicated on insert).</li>
</ul></section>
"""
