"""The HTML page of an audit: one self-contained file (inline styles, no script, no image, no network).

The page is drawn from :meth:`Audit.to_dict() <initlab.auditing.Audit.to_dict>`, the same data as the JSON. The
Content-Security-Policy forbids every fetch, so the page loads nothing even if a value slipped through; Jinja2 escapes
every value (autoescape on), so a parameter or module name is always shown as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import jinja2

from initlab.about import installed_version
from initlab.auditing._format import fmt

_STYLE = """body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; vertical-align: top; }
th { background: #f2f2f2; } td.l, th.l { text-align: left; }
.muted { color: #666; font-size: 0.9em; }
.sev { font-weight: 600; text-transform: uppercase; font-size: 0.85em; padding: 0.1em 0.4em; border-radius: 3px; }
.sev.error { background: #fdd; color: #900; } .sev.warning { background: #fed; color: #850; }
.sev.info { background: #def; color: #035; } .sev.ok { background: #dfd; color: #060; }
tr.error td { background: #fff4f4; } tr.warning td { background: #fffaf0; }
ul.findings { padding-left: 1.2em; } ul.findings li { margin-bottom: 0.5em; }
code { font-size: 0.95em; }
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
{{ style|safe }}</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="muted">Built by initlab {{ version }} on {{ generated_at }}.</p>
<p id="summary"><span class="sev {{ 'ok' if audit.ok else 'error' }}">{{ 'pass' if audit.ok else 'fail' }}</span>
{{ audit.summary }}</p>

<h2>Findings</h2>
{% if audit.findings %}
<ul class="findings" id="findings">
{% for f in audit.findings %}<li class="{{ f.severity }}"><span class="sev {{ f.severity }}">{{ f.severity }}</span>
<code>{{ f.kind }}</code>: {{ f.message }}</li>
{% endfor %}</ul>
{% else %}<p id="findings">No findings.</p>{% endif %}

<h2>Parameters</h2>
<table id="parameters">
<thead><tr><th class="l">parameter</th><th class="l">module</th><th class="l">role</th><th class="l">shape</th>
<th>fan in</th><th>fan out</th><th>mean</th><th>std</th><th>min</th><th>max</th><th>expected std</th><th>p</th>
<th class="l">reference rule</th><th class="l">closest fan-based rule</th><th class="l">verdict</th></tr></thead>
<tbody>
{% for r in rows %}<tr class="{{ r.severity }}"><td class="l"><code>{{ r.key }}</code>{% if r.tied_to %}
(= {% for t in r.tied_to %}<code>{{ t }}</code>{% if not loop.last %}, {% endif %}{% endfor %}){% endif %}</td>
<td class="l">{{ r.module_type }}</td><td class="l">{{ r.role }}</td><td class="l">{{ r.shape }}</td>
<td>{{ r.fan_in }}</td><td>{{ r.fan_out }}</td><td>{{ r.mean }}</td><td>{{ r.std }}</td><td>{{ r.min }}</td>
<td>{{ r.max }}</td><td>{{ r.expected_std }}</td><td>{{ r.p }}</td><td class="l">{{ r.expected }}</td>
<td class="l">{{ r.closest }}</td><td class="l"><span class="sev {{ r.severity }}">{{ r.severity }}</span></td></tr>
{% endfor %}</tbody>
</table>

<h2>How it was judged</h2>
<p>Reference: {{ audit.reference }}.{% if audit.explicit %} The caller named it, so a mismatch is an error.{% else %}
A mismatch with it is an error only where it is wrong whatever the intent.{% endif %}</p>
<ul id="method">{% for line in audit.method %}<li>{{ line }}</li>{% endfor %}</ul>
</body>
</html>
"""


def _row(r: Mapping[str, Any]) -> dict[str, Any]:
    """One row of :meth:`ParameterAudit.to_dict <initlab.auditing.ParameterAudit.to_dict>`, formatted."""
    numbers = {k: fmt(r[k]) for k in ("fan_in", "fan_out", "mean", "std", "min", "max", "expected_std")}
    closest = "" if r["closest_rule"] is None else f"{r['closest_rule']} (×{fmt(r['rule_ratio'], '.3g')})"
    return {
        **numbers,
        "key": r["key"],
        "tied_to": r["tied_to"],
        "module_type": r["module_type"],
        "role": r["role"],
        "shape": "×".join(map(str, r["shape"])),
        "p": fmt(r["p_value"], ".2g"),
        "expected": r["expected"] or "no rule covers it",
        "closest": closest,
        "severity": r["severity"] or "ok",
    }


def render(audit: Mapping[str, Any], title: str) -> str:
    """The page of an audit, given as :meth:`Audit.to_dict() <initlab.auditing.Audit.to_dict>`, as a string."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_TEMPLATE).render(
        title=title,
        style=_STYLE,
        audit=audit,
        rows=[_row(r) for r in audit["parameters"]],
        version=installed_version(),
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
