"""HTML pieces of the report's LLM sections (used by html.py; still one offline file).

* ``side_by_side``: an example's two answers in two columns, changed words
  marked (``<del>`` on the champion's side, ``<ins>`` on the challenger's) or,
  for JSON answers, a table of the differing paths; status, latency, tokens,
  cost, errors, and the judge's verdict and rationale. Rendered inside a
  ``<details>`` under the example's row: a click expands it, and a link to
  ``report.html#ex-...`` opens it directly.
* ``llm_section``: the judge's verdicts (better / same / worse with
  intervals) and the batch-run cost next to the live cost.
"""

from __future__ import annotations

import hashlib
from html import escape

from shadowstream.analytics.model import Rate, Report
from shadowstream.analytics.sidebyside import Answer, SideBySide

STYLE = """
tr.sides > td { padding:0 8px 10px; border-bottom:1px solid var(--line); text-align:left; }
details.sides > summary { cursor:pointer; color:var(--blue); font-size:12.5px; }
.pair { display:grid; grid-template-columns:1fr 1fr; gap:12px; margin-top:8px; }
.pair .side { border:1px solid var(--line); border-radius:8px; padding:8px 10px;
              background:#fcfcfd; min-width:0; text-align:left; }
.pair h4 { margin:0 0 4px; font-size:12.5px; }
.pair .facts { color:var(--muted); font-size:12px; margin-bottom:6px; }
.pair pre { white-space:pre-wrap; word-break:break-word; margin:0; font-size:12.5px;
            font-family:"DejaVu Sans Mono",ui-monospace,monospace; }
del.d { background:#fecaca; color:#7f1d1d; text-decoration:line-through; }
ins.i { background:#bbf7d0; color:#14532d; text-decoration:none; }
.pair .err { color:var(--red); font-size:12px; margin-top:6px; }
.judge { margin-top:6px; font-size:12.5px; }
.judge b.better { color:var(--green); } .judge b.worse { color:var(--red); }
.judge b.undecided { color:var(--amber); }
table.paths td { text-align:left; font-family:"DejaVu Sans Mono",ui-monospace,monospace;
                 font-size:12px; }
"""

# opens the example a link points to (report.html#ex-...), and counts visible diff marks
OPEN_TARGET = """
(function () {
  if (location.hash) {
    var el = document.getElementById(location.hash.slice(1));
    if (el && el.tagName === 'DETAILS') { el.open = true; el.scrollIntoView(); }
  }
  var visible = 0;
  document.querySelectorAll('details.sides del.d, details.sides ins.i').forEach(function (m) {
    var r = m.getBoundingClientRect();
    if (r.width > 0 && r.height > 0) { visible += 1; }
  });
  document.body.setAttribute('data-diff-marks', String(visible));
})();
"""


def anchor(side: SideBySide) -> str:
    key = f"{side.experiment_id}\x00{side.challenger}\x00{side.request_id}".encode()
    return "ex-" + hashlib.blake2b(key, digest_size=8).hexdigest()


def _facts(answer: Answer | None) -> str:
    if answer is None:
        return "missing"
    bits = [escape(answer.status)]
    if answer.latency_ms is not None:
        bits.append(f"{answer.latency_ms:,.0f} ms")
    if answer.tokens_in is not None or answer.tokens_out is not None:
        bits.append(f"tokens {answer.tokens_in or 0:,} → {answer.tokens_out or 0:,}")
    if answer.cost is not None:
        bits.append(f"${answer.cost:.6f}")
    return " · ".join(bits)


def _texts(side: SideBySide) -> tuple[str, str]:
    if side.diff.kind == "text":
        left, right = [], []
        for run in side.diff.runs:
            if run.op == "equal":
                left.append(escape(run.champion))
                right.append(escape(run.challenger))
                continue
            if run.champion:
                left.append(f"<del class=d>{escape(run.champion)}</del>")
            if run.challenger:
                right.append(f"<ins class=i>{escape(run.challenger)}</ins>")
        return "".join(left), "".join(right)
    champion = side.champion.text if side.champion and side.champion.output else ""
    answer = side.answer.text if side.answer and side.answer.output else ""
    return escape(champion) or "&ndash;", escape(answer) or "&ndash;"


def _paths(side: SideBySide) -> str:
    if side.diff.kind != "json":
        return ""
    rows = "".join(
        f"<tr><td>{escape(c.path)}</td><td><del class=d>{escape(c.champion or '(absent)')}"
        f"</del></td><td><ins class=i>{escape(c.challenger or '(absent)')}</ins></td></tr>"
        for c in side.diff.paths
    )
    return (
        "<table class=paths><thead><tr><th class=l>path</th><th class=l>champion</th>"
        f"<th class=l>challenger</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def side_by_side(side: SideBySide, colspan: int) -> str:
    left, right = _texts(side)
    columns = []
    for title, answer, text in (
        ("champion", side.champion, left),
        (side.challenger, side.answer, right),
    ):
        model = f" <span class=muted>({escape(answer.model)})</span>" if answer else ""
        error = f"<div class=err>{escape(answer.error)}</div>" if answer and answer.error else ""
        columns.append(
            f"<div class=side><h4>{escape(title)}{model}</h4><div class=facts>{_facts(answer)}"
            f"</div><pre>{text}</pre>{error}</div>"
        )
    judge = ""
    if side.judge_verdict:
        verdict = escape(side.judge_verdict)
        judge = (
            f"<div class=judge>judge: <b class='{verdict}'>{verdict}</b> "
            f"{escape(side.judge_rationale or '')}</div>"
        )
    return (
        f"<tr class=sides><td colspan={colspan}><details class=sides id='{anchor(side)}'>"
        "<summary>both answers, side by side</summary>"
        f"<div class=pair>{''.join(columns)}</div>{_paths(side)}{judge}</details></td></tr>"
    )


def _rate(rate: Rate) -> str:
    if rate.value is None or rate.low is None or rate.high is None:
        return "&ndash;"
    return (
        f"{rate.value:.0%} <span class=muted>[{rate.low:.0%}, {rate.high:.0%}]</span>"
        if rate.n >= 1
        else "&ndash;"
    )


def llm_section(report: Report) -> str:
    if not report.judge and not report.costs:
        return ""
    parts = ["<section class=card><div class=card-head><h2>LLM judge and batch cost</h2></div>"]
    if report.judge:
        rows = "".join(
            f"<tr><td class=l>{escape(j.challenger)}</td><td class=l>{escape(j.experiment_id)}"
            f"</td><td>{j.judged:,}</td><td>{_rate(j.better)}</td><td>{_rate(j.same)}</td>"
            f"<td>{_rate(j.worse)}</td><td>{_rate(j.undecided)}</td><td>{j.skipped:,}</td>"
            f"<td>{j.errors:,}</td></tr>"
            for j in report.judge
        )
        parts.append(
            "<h3>Judge verdicts, challenger vs champion (95% Wilson intervals)</h3><table><thead>"
            "<tr><th class=l>challenger</th><th class=l>experiment</th><th>judged</th>"
            "<th>better</th><th>same</th><th>worse</th><th>undecided (orders disagree)</th>"
            f"<th>skipped (budget)</th><th>errors</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    if report.costs:
        rows = "".join(
            f"<tr><td class=l>{escape(c.challenger)}</td><td class=l>{escape(c.experiment_id)}"
            f"</td><td>{_money(c.batch_per_1k)}</td><td>{_money(c.live_per_1k)}</td>"
            f"<td class=l>{escape(c.live_basis or 'no live cost known')}</td>"
            f"<td>{'&ndash;' if c.saving is None else f'{c.saving:.0%}'}</td></tr>"
            for c in report.costs
        )
        parts.append(
            "<h3 style='margin-top:14px'>Cost per 1,000 answered requests</h3><table><thead><tr>"
            "<th class=l>challenger</th><th class=l>batch run</th><th>batch price</th>"
            "<th>live</th><th class=l>live basis</th><th>saving</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    parts.append("</section>")
    return "".join(parts)


def _money(value: float | None) -> str:
    if value is None:
        return "&ndash;"
    return f"${value:,.2f}" if value >= 1 else f"${value:,.4f}"
