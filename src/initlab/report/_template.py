"""The HTML pages of the reports: one self-contained file each, that opens offline.

A study report is interactive by default: its figures are drawn in the browser by uPlot (inlined) from the numbers
embedded as JSON in ``<script type="application/json">``; with ``--static`` (and for a diagnosis report) they are
base64 PNG images and the page has no script. Either way the Content-Security-Policy forbids every network fetch
(and lets run only the page's own scripts, named by their SHA-256), so the page cannot load anything even if a value
slipped through; Jinja2 escapes every value (autoescape on), so a study or arm name is always shown as text.
"""

# The policy of a page without script: nothing fetched, inline styles and data: images only.
STATIC_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

# One style sheet for every report page (inserted with ``|safe``: it is ours, never user text).
PAGE_STYLE = """body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; vertical-align: top; }
th { background: #f2f2f2; } td.l, th.l { text-align: left; }
tr.bad td { color: #a00; }
.muted { color: #666; font-size: 0.9em; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9em; margin-top: 0.3em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
.error { color: #a00; font-weight: 600; } .warning { color: #8a5a00; font-weight: 600; }
ul.findings li { margin-bottom: 0.6em; }
"""

# What the interactive charts add to the style sheet (after uPlot's own).
CHART_STYLE = """.chart-host { margin: 0.4em 0; }
.legend { display: flex; flex-wrap: wrap; gap: 0.2em 0.4em; margin: 0.3em 0 0.5em; }
.legend button { font: inherit; font-size: 0.85em; border: 1px solid #ddd; background: #fff; border-radius: 3px;
  padding: 0.1em 0.45em; cursor: pointer; display: inline-flex; align-items: center; gap: 0.35em; }
.legend button.off { opacity: 0.35; text-decoration: line-through; }
.legend .legend-all { color: #555; font-style: italic; }
.sw { display: inline-block; width: 18px; height: 3px; border-radius: 1px; }
.panels { display: flex; flex-wrap: wrap; gap: 14px; }
.panel { position: relative; }
.panel-head { display: flex; justify-content: space-between; align-items: center; gap: 0.5em; font-size: 0.85em; }
.panel-title { font-weight: 600; }
.toolbar { display: flex; gap: 0.3em; align-items: center; white-space: nowrap; }
.toolbar button { font: inherit; font-size: 0.9em; padding: 0 0.4em; border: 1px solid #ccc; background: #f7f7f7;
  border-radius: 3px; cursor: pointer; }
.plot { position: relative; }
.tip { position: absolute; z-index: 10; pointer-events: none; background: rgba(255, 255, 255, 0.95);
  border: 1px solid #bbb; border-radius: 3px; padding: 0.25em 0.45em; font-size: 0.78em; line-height: 1.3;
  box-shadow: 0 1px 4px rgba(0, 0, 0, 0.15); max-width: 360px; }
.tip-x { font-weight: 600; } .tip-row { display: flex; gap: 0.4em; align-items: center; }
.tip-val { margin-left: auto; font-variant-numeric: tabular-nums; padding-left: 0.8em; }
.frames { display: flex; align-items: center; gap: 0.6em; margin: 0.3em 0 0.6em; }
.frames input[type=range] { width: 260px; vertical-align: middle; }
.frame-value { font-weight: 600; min-width: 2em; }
"""

# The head of every page. The Content-Security-Policy forbids every network fetch; the style sheet is ours (|safe).
_HEAD_MACRO = (
    """{% macro head(title, style, csp=none) -%}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp or \""""
    + STATIC_CSP
    + """\" }}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
{{ style|safe }}</style>
</head>
{%- endmacro %}
"""
)

# A figure with its heading: the PNG inline as base64, its size given so the page does not reflow as it loads.
_FIGURE_MACRO = """{% macro figure(fig, level=2) -%}
<h{{ level }}>{{ fig.title }}</h{{ level }}>
<figure>
<img src="data:image/png;base64,{{ fig.base64 }}" alt="{{ fig.alt }}" width="{{ fig.width }}" height="{{ fig.height }}">
<figcaption>{{ fig.caption }}</figcaption>
</figure>
{%- endmacro %}
"""

# An interactive figure: a container that report.js fills from the figure of the same id in the embedded JSON.
_CHART_MACRO = """{% macro chart(fig, level=2) -%}
<h{{ level }}>{{ fig.title }}</h{{ level }}>
<figure>
<div id="{{ fig.id }}" class="chart-host" role="group" aria-label="{{ fig.alt }}"></div>
<figcaption>{{ fig.caption }}</figcaption>
</figure>
{%- endmacro %}
{% macro show(fig, level=2) -%}
{% if fig.kind == "chart" %}{{ chart(fig, level) }}{% else %}{{ figure(fig, level) }}{% endif %}
{%- endmacro %}
"""

STUDY_TEMPLATE = (
    _HEAD_MACRO
    + _FIGURE_MACRO
    + _CHART_MACRO
    + """{{ head("initlab study report: " ~ study.name, style, csp) }}
<body>
<h1>Study report: {{ study.name }}</h1>
<p class="muted">Built by initlab {{ generator_version }} on {{ generated_at }} from <code>{{ study_dir }}</code>.
{%- if scripts %} Charts: hover for values, click a legend entry to hide an arm (double-click: only that arm), drag
to zoom (double-click resets), PNG and SVG to save a chart.{% endif %}</p>
{% if scripts %}<noscript><p class="warning">The charts of this page need JavaScript; <code>initlab report --static
</code> builds the same report with images.</p></noscript>{% endif %}

<section id="verdict">
<h2>Verdict</h2>
<ul>{% for line in verdict %}<li>{{ line }}</li>{% endfor %}</ul>
</section>

<h2>What ran</h2>
<dl class="meta">
<dt>data set</dt><dd>{{ config.dataset }}{% if config.dataset_options %} {{ config.dataset_options }}{% endif %}
  (normalize: {{ config.normalize }})</dd>
<dt>model</dt><dd><code>{{ config.model }}</code></dd>
<dt>training</dt><dd>{{ training }}</dd>
{% if sweep %}<dt>sweep</dt><dd>{% for a in sweep %}{{ a.axis }}: {{ a.text }}{% if not loop.last %}; {% endif %}
{%- endfor %} ({{ n_points }} grid points)</dd>
<dt>arms × grid × seeds</dt><dd>{{ n_arms }} arms × {{ n_points }} grid points × {{ config.seeds|length }} seeds
  (seeds {{ config.seeds|join(", ") }}) = {{ runs|length }} runs: {{ status_counts }}</dd>
{% else %}<dt>arms × seeds</dt><dd>{{ arms|length }} arms × {{ config.seeds|length }} seeds
  (seeds {{ config.seeds|join(", ") }}) = {{ runs|length }} runs: {{ status_counts }}</dd>
{% endif %}<dt>started</dt><dd>{{ study.started_at or "not started" }}</dd>
<dt>finished</dt><dd>{{ study.finished_at or "not finished" }}</dd>
<dt>duration</dt><dd>{{ duration }}</dd>
<dt>versions</dt><dd>initlab {{ meta.initlab or "?" }}, torch {{ meta.torch or "?" }},
  Python {{ meta.python or "?" }}</dd>
<dt>machine</dt><dd>{{ machine }}</dd>
</dl>
<details><summary>Full study config (JSON)</summary><pre>{{ config_json }}</pre></details>

<h2>Ranked {{ "configurations" if sweep else "arms" }}</h2>
<p>Ranked by mean final test accuracy over seeds. Values are mean ± sample standard deviation over the finished runs;
the 95% interval is Student's t over seeds (n − 1 degrees of freedom), shown when there are at least two runs;
it is clipped to the range its quantity can take, [0, 100] % for accuracies and [0, ∞) for losses (with few seeds
the t interval can reach past it), and an interval marked * was clipped.
Epochs to target: mean epoch at which validation accuracy first reached {{ target }}, over the runs that did.
Diverged runs have no test metrics and do not enter the means.</p>
<table id="ranked">
<thead><tr><th>#</th><th class="l">{{ "configuration" if sweep else "arm" }}</th>{# joined to the next line -#}
<th>test acc (%)</th><th>95% interval (%)</th><th>test loss</th>
<th>95% interval</th><th>epochs to {{ target }} val acc</th><th>diverged</th><th>failed</th><th>runs</th></tr></thead>
<tbody>
{% for r in ranked %}
<tr{% if r.finished == 0 %} class="bad"{% endif %}><td>{{ r.rank }}</td><td class="l">{{ r.arm }}</td>
<td>{{ r.acc }}</td><td>{{ r.acc_ci }}</td><td>{{ r.loss }}</td><td>{{ r.loss_ci }}</td><td>{{ r.reach }}</td>
<td>{{ r.diverged }}</td><td>{{ r.failed }}</td><td>{{ r.runs }}</td></tr>
{% endfor %}
</tbody>
</table>
{% if problems %}
<p><strong>Runs that diverged or failed:</strong></p>
<ul>{% for p in problems %}<li><code>{{ p.run_id }}</code>: {{ p.status }}
{% if p.epoch %} at epoch {{ p.epoch }}{% endif %}
{%- if p.message %}: {{ p.message }}{% endif %}</li>{% endfor %}</ul>
{% endif %}

{% if sweep %}<h2>Sweep</h2>
<p>Every arm ran at every point of the grid of {% for a in sweep %}{{ a.axis }}{% if not loop.last %} × {% endif %}
{%- endfor %}, with every seed; a configuration is an arm at a grid point, and the table above ranks them.
{{ sweep_note }}</p>
<h3>Best configuration per arm</h3>
<p>Each arm's configuration with the highest mean test accuracy over seeds (# is its rank in the table above),
mean ± sample standard deviation over its finished runs.</p>
<table id="best-per-arm">
<thead><tr><th class="l">arm</th><th class="l">best configuration</th><th>#</th><th>test acc (%)</th>
<th>test loss</th><th>finished</th><th>diverged</th></tr></thead>
<tbody>
{% for r in best_rows %}
<tr><td class="l">{{ r.arm }}</td><td class="l">{{ r.point }}</td><td>{{ r.rank }}</td><td>{{ r.acc }}</td>
<td>{{ r.loss }}</td><td>{{ r.runs }}</td><td>{{ r.diverged }}</td></tr>
{% endfor %}
</tbody>
</table>
{% for fig in sweep_figures %}
{{ show(fig, 3) }}
{% endfor %}
{% endif %}{% for fig in figures %}
{{ show(fig) }}
{% endfor %}
{% if init_errors %}
<p class="muted">Initial weights could not be rebuilt for:
{% for e in init_errors %}<code>{{ e.arm }}</code> ({{ e.error }}){% if not loop.last %}; {% endif %}{% endfor %}</p>
{% endif %}

{% if diag_figures %}
<h2>Diagnostics: signal and gradients per layer</h2>
<p>Stored by the runner with <code>initlab.diagnose</code> on a batch of training data ({{ diag_note }}).</p>
{% for fig in diag_figures %}
{{ show(fig, 3) }}
{% endfor %}
{% endif %}
{% if diagnostics %}
<h2>Diagnostics recorded during the study</h2>
<p>Per-run statistics stored by the diagnostics (epoch 0 is at initialization), as recorded.</p>
{% for d in diagnostics %}
<details><summary><code>{{ d.run_id }}</code>, epoch {{ d.epoch }} ({{ d.rows|length }} values{% if d.truncated %},
first {{ d.rows|length }} shown{% endif %})</summary>
<table><thead><tr><th class="l">statistic</th><th class="l">value</th></tr></thead><tbody>
{% for k, v in d.rows %}<tr><td class="l"><code>{{ k }}</code></td><td class="l">{{ v }}</td></tr>{% endfor %}
</tbody></table></details>
{% endfor %}
{% endif %}
{% if scripts %}<script type="application/json" id="report-data">{{ data_json|safe }}</script>
{% for code in scripts %}<script>{{ code|safe }}</script>
{% endfor %}{% endif %}
</body>
</html>
"""
)

DIAGNOSIS_TEMPLATE = (
    _HEAD_MACRO
    + _FIGURE_MACRO
    + """{{ head("initlab diagnosis: " ~ title, style) }}
<body>
<h1>Diagnosis: {{ title }}</h1>
<p class="muted">Built by initlab {{ generator_version }} on {{ generated_at }}. One forward pass in eval mode
{%- if any_grads %} and one backward pass{% endif %} on a batch of {{ batch }} samples; thresholds are those of
<code>initlab.diagnostics.THRESHOLDS</code>.</p>

<h2>Overview</h2>
<table id="overview">
<thead><tr><th class="l">scheme</th><th>layers</th><th>signal factor / layer</th><th>last / input std</th>
<th>loss</th><th>∂out first / last</th><th>Jacobian mean σ²</th><th>σ in [{{ band }}]</th><th class="l">findings</th>
<th>seconds</th></tr></thead>
<tbody>
{% for d in diagnoses %}
<tr><td class="l">{{ d.label }}</td><td>{{ d.layers|length }}</td><td>{{ d.signal_factor }}</td>
<td>{{ d.signal_ratio }}</td><td>{{ d.loss }}</td><td>{{ d.grad_ratio }}</td><td>{{ d.jac_mean_sq }}</td>
<td>{{ d.jac_within }}</td>
<td class="l">{% for f in d.findings %}<span class="{{ f.severity }}">{{ f.kind }}</span>{% if not loop.last %},
{% endif %}{% else %}none{% endfor %}</td><td>{{ d.seconds }}</td></tr>
{% endfor %}
</tbody>
</table>

<h2>Findings</h2>
{% for d in diagnoses %}
{% if diagnoses|length > 1 %}<h3>{{ d.label }}</h3>{% endif %}
{% if d.findings %}
<ul class="findings">
{% for f in d.findings %}
<li><span class="{{ f.severity }}">{{ f.severity|upper }}</span> <strong>{{ f.kind }}</strong>
in {{ f.layers|join(", ") }}: {{ f.message }}<br>
<em>Suggestion:</em> {{ f.suggestion }}{% if f.scheme %} (scheme <code>{{ f.scheme }}</code>){% endif %}
{% if f.figures %}<br><span class="muted">figures: {{ f.figures }}</span>{% endif %}</li>
{% endfor %}
</ul>
{% else %}
<p>No findings: nothing looks wrong with this initialization on this batch.</p>
{% endif %}
{% for note in d.notes %}<p class="muted">{{ note }}</p>{% endfor %}
{% endfor %}

{% for fig in figures %}
{{ figure(fig) }}
{% endfor %}

<h2>Per-layer statistics</h2>
<p>Layers in call order: a weight layer with the activation after it. std and mean are the layer's output; pre std
the activation's input; sat % the share of tanh/sigmoid outputs near their limits; dead % the share of ReLU units
never active on the batch; dup the units that duplicate another; ∂out std and ∂W std the gradients' stds.</p>
{% for d in diagnoses %}
<table class="layers">
<caption class="l">{{ d.label }}</caption>
<thead><tr><th>#</th><th class="l">layer</th><th class="l">type</th><th class="l">activation</th><th>units</th>
<th>pre std</th><th>mean</th><th>std</th><th>sat %</th><th>dead %</th><th>dup</th><th>∂out std</th><th>∂W std</th></tr>
</thead>
<tbody>
{% for r in d.layers %}
<tr><td>{{ r.index }}</td><td class="l">{{ r.name }}</td><td class="l">{{ r.module_type }}</td>
<td class="l">{{ r.activation }}</td><td>{{ r.units }}</td><td>{{ r.pre_std }}</td><td>{{ r.mean }}</td>
<td>{{ r.std }}</td><td>{{ r.saturated }}</td><td>{{ r.dead }}</td><td>{{ r.duplicates }}</td>
<td>{{ r.grad_output_std }}</td><td>{{ r.grad_weight_std }}</td></tr>
{% endfor %}
</tbody>
</table>
{% endfor %}
</body>
</html>
"""
)
