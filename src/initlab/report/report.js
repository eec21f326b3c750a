// initlab's interactive study report: draws the figures embedded as JSON (script#report-data) with uPlot.
// Plain JavaScript, no build step; the page inlines uPlot (the global `uPlot`) before this script.
// Every label is set with textContent, never as HTML. window.initlabReport exposes the charts and the exports
// (png, svg) to whoever wants them: the page's own buttons, and the tests.
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const CHART_HEIGHT = 250;
  // The PNG export: a title band above the chart and legend rows below it (CSS pixels, times devicePixelRatio).
  const TITLE_H = 28, LEGEND_ROW_H = 18, LEGEND_COL_W = 180, LEGEND_PAD = 8;
  const FONT = "12px system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif";
  const figures = {}; // id -> {spec, hidden: Set, charts: [{u, panel}], frame, scales: {}}

  // --- small helpers -----------------------------------------------------------------------------------------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(3);
    return String(+v.toPrecision(4));
  }
  function alpha(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
  }
  function download(name, href) {
    const a = el("a");
    a.href = href;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }
  function safeName(s) {
    return String(s).replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, 80) || "figure";
  }
  function escXml(s) {
    return String(s).replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;" })[c]);
  }
  const logTicks = (u, splits) => splits.map((v) => {
    if (v === null) return "";
    const e = Math.log10(Math.abs(v));
    if (v === 0) return "0";
    if (!Number.isInteger(Math.round(e * 1e6) / 1e6)) return "";
    return Math.abs(e) <= 3 ? String(+v.toPrecision(3)) : (v < 0 ? "-" : "") + "1e" + Math.round(e);
  });
  function tickText(v) {
    if (v === null || v === undefined) return "";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return Number(v.toPrecision(2)).toExponential().replace("e+", "e");
    return String(+v.toPrecision(4));
  }
  const linTicks = (u, splits) => splits.map((v) => (v === null ? "" : tickText(v)));
  // On a log axis, grid lines and ticks at the decades only (uPlot also splits at 2, 3, ... 9 times each).
  const isDecade = (v) => v > 0 && Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-6;
  const decadesOnly = (u, splits) => (splits.some(isDecade) ? splits.map((v) => (isDecade(v) ? v : null)) : splits);

  // --- lines: data for uPlot ---------------------------------------------------------------------------------
  // Series of a panel may have their own x values (histograms have their own bins): merge them into one sorted x
  // and put null where a series has no point (spanGaps joins its points).
  function aligned(panel, yScale) {
    const xs = new Set();
    panel.series.forEach((s) => s.x.forEach((x) => { if (x !== null) xs.add(x); }));
    const x = Array.from(xs).sort((a, b) => a - b);
    const at = new Map(x.map((v, i) => [v, i]));
    const keep = (v) => (v === null || v === undefined ? null : yScale === "log" && v <= 0 ? null : v);
    const cols = [];
    panel.series.forEach((s) => {
      const parts = [["y", s.y]];
      if (s.lo && s.hi) parts.push(["lo", s.lo], ["hi", s.hi]);
      parts.forEach(([, ys]) => {
        const col = new Array(x.length).fill(null);
        s.x.forEach((xv, i) => { if (xv !== null && at.has(xv)) col[at.get(xv)] = keep(ys[i]); });
        cols.push(col);
      });
    });
    return [x, ...cols];
  }

  function yScaleOpts(spec, scale) {
    if (scale === "log") return { distr: 3 };
    if (scale === "asinh") return { distr: 4, asinh: spec.y.linthresh || 1e-3 };
    return {};
  }

  function xScaleOpts(panel) {
    const o = { time: false };
    const x = panel.x;
    if (x.scale === "log") { o.distr = 3; if (x.base) o.log = x.base; }
    else if (x.scale === "asinh") { o.distr = 4; o.asinh = x.linthresh || 1; }
    if (x.scale === "category" || x.exact) {
      const vals = x.values || x.ticks.map((_, i) => i + 1);
      const lo = Math.min(...vals), hi = Math.max(...vals);
      o.range = (u, a, b) => {
        if (a !== null && b !== null && (a > lo || b < hi)) return [a, b]; // zoomed in
        if (x.scale === "log") return [lo / Math.pow(hi / lo, 0.05), hi * Math.pow(hi / lo, 0.05)];
        const pad = x.scale === "category" ? 0.5 : 0.05 * ((hi - lo) || 1);
        return x.scale === "asinh" ? [lo, hi] : [lo - pad, hi + pad];
      };
    }
    return o;
  }

  function xAxis(panel) {
    const x = panel.x;
    const axis = { label: panel.xlabel, stroke: "#444", grid: { stroke: "#eee" }, ticks: { stroke: "#ccc" }, font: FONT, labelFont: FONT };
    if (x.scale === "category") {
      axis.splits = () => x.ticks.map((_, i) => i + 1);
      axis.values = (u, splits) => splits.map((v) => x.ticks[v - 1] || "");
      if (x.ticks.length > 6) axis.rotate = -35;
    } else if (x.exact) {
      const vals = x.values;
      axis.splits = () => vals.slice();
      axis.filter = (u, splits) => splits; // every swept value labelled, also on a log axis
      axis.values = (u, splits) => splits.map((v) => tickText(v));
    } else if (x.integer) {
      axis.incrs = [1, 2, 5, 10, 20, 50, 100];
      axis.values = linTicks;
    } else {
      axis.values = x.scale === "log" ? logTicks : linTicks;
      if (x.scale === "log") axis.filter = decadesOnly;
    }
    return axis;
  }

  function panelTitle(fig, panel) {
    return [fig.spec.title, panel.title].filter(Boolean).join(": ");
  }

  // --- lines: one chart ----------------------------------------------------------------------------------------
  function makeLineChart(fig, panel, index, box, width) {
    const spec = fig.spec;
    const state = fig.scales[index] || panel.y.scale;
    const data = aligned(panel, state);
    const series = [{ label: panel.xlabel }];
    const bands = [];
    const owner = []; // series index - 1 -> legend key
    const role = []; // series index - 1 -> "mean", "lo" or "hi" (the band's edges are not shown in the tooltip)
    const legend = new Map(spec.legend.map((e) => [e.key, e]));
    const few = data[0].length <= 12;
    panel.series.forEach((s) => {
      const look = legend.get(s.key) || { color: "#444", dash: [] };
      const show = !fig.hidden.has(s.key);
      series.push({
        label: s.key, stroke: look.color, width: 1.6, dash: look.dash, spanGaps: true, show,
        points: { show: few, size: 5, fill: look.color },
      });
      owner.push(s.key);
      role.push("mean");
      if (s.lo && s.hi) {
        const lo = series.length, hi = lo + 1;
        series.push({ label: s.key + " min", stroke: "transparent", width: 0, spanGaps: true, show, points: { show: false } });
        series.push({ label: s.key + " max", stroke: "transparent", width: 0, spanGaps: true, show, points: { show: false } });
        owner.push(s.key, s.key);
        role.push("lo", "hi");
        bands.push({ series: [hi, lo], fill: alpha(look.color, 0.13) });
      }
    });
    const tip = el("div", "tip");
    tip.hidden = true;
    let hovered = false;
    const hooks = {
      setCursor: [(u) => showTip(u, panel, tip, owner, role, hovered)],
      setScale: [(u, key) => { if (key === "x") syncX(fig, u); }],
      draw: [(u) => drawExtras(u, panel, fig)],
      ready: [(u) => {
        u.over.addEventListener("mouseenter", () => { hovered = true; });
        u.over.addEventListener("mouseleave", () => { hovered = false; tip.hidden = true; });
      }],
    };
    const opts = {
      width, height: CHART_HEIGHT, legend: { show: false }, bands,
      cursor: { drag: { x: true, y: false }, focus: { prox: 16 }, sync: spec.sync ? { key: spec.id, setSeries: false } : undefined },
      focus: { alpha: 0.35 },
      scales: { x: xScaleOpts(panel), y: yScaleOpts(panel, state) },
      axes: [xAxis(panel), {
        label: panel.ylabel, stroke: "#444", grid: { stroke: "#eee" }, ticks: { stroke: "#ccc" }, font: FONT, labelFont: FONT,
        size: 58, values: state === "log" ? logTicks : linTicks, ...(state === "log" ? { filter: decadesOnly } : {}),
      }],
      series, hooks,
    };
    const u = new uPlot(opts, data, box);
    box.appendChild(tip);
    u.initlab = { owner, role, tip, panel, index, figure: spec.id };
    return u;
  }

  // The values under the cursor, in the chart the mouse is over (a synced panel moves its cursor, not its tooltip).
  function showTip(u, panel, tip, owner, role, hovered) {
    const idx = u.cursor.idx;
    if (!hovered || idx === null || idx === undefined || u.cursor.left < 0) { tip.hidden = true; return; }
    const x = u.data[0][idx];
    const rows = [];
    for (let i = 1; i < u.series.length; i++) {
      const s = u.series[i];
      if (!s.show || role[i - 1] !== "mean") continue;
      const v = u.data[i][idx];
      if (v === null || v === undefined) continue;
      rows.push([owner[i - 1], v, s.stroke]);
    }
    tip.textContent = "";
    const xText = panel.x.scale === "category" ? panel.x.ticks[x - 1] : fmt(x);
    tip.appendChild(el("div", "tip-x", `${panel.xlabel}: ${xText}`));
    rows.sort((a, b) => b[1] - a[1]);
    rows.slice(0, 14).forEach(([key, v, color]) => {
      const line = el("div", "tip-row");
      const sw = el("span", "sw");
      sw.style.background = typeof color === "function" ? "#444" : color;
      line.appendChild(sw);
      line.appendChild(el("span", "tip-key", key));
      line.appendChild(el("span", "tip-val", fmt(v)));
      line.dataset.key = key;
      line.dataset.value = String(v);
      tip.appendChild(line);
    });
    if (rows.length > 14) tip.appendChild(el("div", "tip-x", `… ${rows.length - 14} more`));
    tip.hidden = rows.length === 0;
    const left = u.cursor.left + u.over.offsetLeft;
    tip.style.left = (left > u.width / 2 ? left - tip.offsetWidth - 12 : left + 12) + "px";
    tip.style.top = Math.max(0, u.cursor.top + u.over.offsetTop - 20) + "px";
  }

  // The target line on validation accuracy, and × where every run of a configuration diverged (sweep lines).
  function drawExtras(u, panel, fig) {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    if (panel.hline !== null && panel.hline !== undefined) {
      const y = u.valToPos(panel.hline, "y", true);
      if (y >= top && y <= top + height) {
        ctx.save();
        ctx.strokeStyle = "#888";
        ctx.setLineDash([2, 4]);
        ctx.lineWidth = 1;
        ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + width, y); ctx.stroke();
        ctx.restore();
      }
    }
    const legend = new Map(fig.spec.legend.map((e) => [e.key, e]));
    panel.series.forEach((s, k) => {
      if (!s.marks || !s.marks.length || fig.hidden.has(s.key)) return;
      ctx.save();
      ctx.fillStyle = (legend.get(s.key) || { color: "#444" }).color;
      ctx.font = `bold ${Math.round(14 * devicePixelRatio)}px sans-serif`;
      ctx.textAlign = "center";
      s.marks.forEach((xv) => {
        const x = u.valToPos(xv, "x", true);
        ctx.fillText("×", x, top + height - (6 + 12 * k) * devicePixelRatio);
      });
      ctx.restore();
    });
  }

  // Zooming one panel of a synced figure zooms the others (the cursor is synced by uPlot itself).
  function syncX(fig, src) {
    if (!fig.spec.sync || fig.syncing) return;
    fig.syncing = true;
    const { min, max } = src.scales.x;
    fig.charts.forEach((c) => { if (c.u !== src && c.u.scales.x.min !== min) c.u.setScale("x", { min, max }); });
    fig.syncing = false;
  }

  // Histograms: fit the x range to the arms shown, so that isolating one arm shows its own distribution.
  function fitX(c, fig) {
    if (!c.u || !c.panel.x || !c.panel.x.fit) return;
    const u = c.u;
    let lo = Infinity, hi = -Infinity;
    for (let i = 1; i < u.series.length; i++) {
      if (!u.series[i].show) continue;
      u.data[i].forEach((v, j) => { if (v !== null) { lo = Math.min(lo, u.data[0][j]); hi = Math.max(hi, u.data[0][j]); } });
    }
    if (!isFinite(lo)) return;
    const pad = 0.04 * ((hi - lo) || 1);
    u.setScale("x", { min: lo - pad, max: hi + pad });
  }

  // --- legend: click hides an arm everywhere in the figure, double-click (or shift-click) isolates it ----------
  function applyVisibility(fig) {
    fig.charts.forEach((c) => {
      if (!c.u || !c.u.initlab) return;
      const owner = c.u.initlab.owner;
      c.u.batch(() => {
        owner.forEach((key, i) => {
          const show = !fig.hidden.has(key);
          if (c.u.series[i + 1].show !== show) c.u.setSeries(i + 1, { show });
        });
      });
      fitX(c, fig);
    });
    fig.legendItems.forEach((item) => item.classList.toggle("off", fig.hidden.has(item.dataset.key)));
  }

  function isolate(fig, key) {
    const keys = fig.spec.legend.map((e) => e.key);
    const only = keys.every((k) => (k === key) !== fig.hidden.has(k));
    fig.hidden = new Set(only ? [] : keys.filter((k) => k !== key));
    applyVisibility(fig);
  }

  function buildLegend(fig, host) {
    const box = el("div", "legend");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "arms: click to hide or show, double-click to show only this one");
    fig.legendItems = fig.spec.legend.map((entry) => {
      const item = el("button", "legend-item");
      item.type = "button";
      item.dataset.key = entry.key;
      item.title = "click: hide or show; double-click or shift-click: show only this one";
      const sw = el("span", "sw");
      sw.style.background = entry.color;
      if (entry.dash && entry.dash.length) sw.classList.add("dashed");
      item.appendChild(sw);
      item.appendChild(el("span", "legend-label", entry.key));
      item.addEventListener("click", (ev) => {
        if (ev.shiftKey) { isolate(fig, entry.key); return; }
        if (fig.hidden.has(entry.key)) fig.hidden.delete(entry.key); else fig.hidden.add(entry.key);
        applyVisibility(fig);
      });
      item.addEventListener("dblclick", () => isolate(fig, entry.key));
      box.appendChild(item);
      return item;
    });
    if (fig.spec.legend.length > 1) {
      const all = el("button", "legend-all", "show all");
      all.type = "button";
      all.addEventListener("click", () => { fig.hidden.clear(); applyVisibility(fig); });
      box.appendChild(all);
    }
    host.appendChild(box);
  }

  // --- exports ---------------------------------------------------------------------------------------------------
  function legendEntries(fig, c) {
    const keys = new Set(c.panel.series.map((s) => s.key));
    return fig.spec.legend.filter((e) => keys.has(e.key) && !fig.hidden.has(e.key));
  }

  // The PNG of one chart: its title, the chart as drawn, and a legend of the arms shown, on white.
  function chartPNG(figId, index) {
    const fig = figures[figId];
    const c = fig.charts[index];
    const src = c.canvas ? c.canvas : c.u.ctx.canvas;
    const r = src.width / (c.cssWidth || c.u.width);
    const entries = c.u ? legendEntries(fig, c) : [];
    const cols = Math.max(1, Math.floor((c.cssWidth || c.u.width) / LEGEND_COL_W));
    const rows = entries.length ? Math.ceil(entries.length / cols) : 0;
    const out = document.createElement("canvas");
    out.width = src.width;
    out.height = src.height + Math.round((TITLE_H + (rows ? rows * LEGEND_ROW_H + LEGEND_PAD : 0)) * r);
    const ctx = out.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.fillStyle = "#222";
    ctx.font = `600 ${Math.round(13 * r)}px system-ui, sans-serif`;
    ctx.textBaseline = "middle";
    ctx.fillText(panelTitle(fig, c.panel), 8 * r, (TITLE_H / 2) * r, out.width - 16 * r);
    ctx.drawImage(src, 0, Math.round(TITLE_H * r));
    ctx.font = `${Math.round(11 * r)}px system-ui, sans-serif`;
    entries.forEach((e, i) => {
      const x = (i % cols) * LEGEND_COL_W * r + 8 * r;
      const y = src.height + (TITLE_H + LEGEND_PAD / 2 + Math.floor(i / cols) * LEGEND_ROW_H + LEGEND_ROW_H / 2) * r;
      ctx.strokeStyle = e.color;
      ctx.lineWidth = 2 * r;
      ctx.setLineDash((e.dash || []).map((d) => d * r));
      ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 22 * r, y); ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "#222";
      ctx.fillText(e.key, x + 28 * r, y, (LEGEND_COL_W - 34) * r);
    });
    return out.toDataURL("image/png");
  }

  // The SVG of one chart, rebuilt from its data: axes with uPlot's ticks, a polyline per arm shown, a legend.
  function chartSVG(figId, index) {
    const fig = figures[figId];
    const c = fig.charts[index];
    if (c.heat) return heatSVG(fig, c);
    const u = c.u;
    const pr = u.ctx.canvas.width / u.width;
    const bl = u.bbox.left / pr, bt = u.bbox.top / pr, bw = u.bbox.width / pr, bh = u.bbox.height / pr;
    const entries = legendEntries(fig, c);
    const cols = Math.max(1, Math.floor(u.width / LEGEND_COL_W));
    const rows = entries.length ? Math.ceil(entries.length / cols) : 0;
    const W = u.width, H = TITLE_H + u.height + (rows ? rows * LEGEND_ROW_H + LEGEND_PAD : 0);
    const out = [];
    out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="11">`);
    out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
    out.push(`<text x="8" y="${TITLE_H / 2 + 4}" font-size="13" font-weight="600">${escXml(panelTitle(fig, c.panel))}</text>`);
    out.push(`<g transform="translate(0 ${TITLE_H})">`);
    out.push(`<rect x="${bl}" y="${bt}" width="${bw}" height="${bh}" fill="none" stroke="#ccc"/>`);
    const xa = u.axes[0], ya = u.axes[1];
    (xa._splits || []).forEach((v, i) => {
      const x = bl + u.valToPos(v, "x");
      if (x < bl - 0.5 || x > bl + bw + 0.5) return;
      out.push(`<line x1="${x}" y1="${bt}" x2="${x}" y2="${bt + bh}" stroke="#eee"/>`);
      out.push(`<text x="${x}" y="${bt + bh + 14}" text-anchor="middle">${escXml((xa._values || [])[i] ?? "")}</text>`);
    });
    (ya._splits || []).forEach((v, i) => {
      const y = bt + u.valToPos(v, "y");
      if (y < bt - 0.5 || y > bt + bh + 0.5) return;
      out.push(`<line x1="${bl}" y1="${y}" x2="${bl + bw}" y2="${y}" stroke="#eee"/>`);
      out.push(`<text x="${bl - 4}" y="${y + 4}" text-anchor="end">${escXml((ya._values || [])[i] ?? "")}</text>`);
    });
    out.push(`<text x="${bl + bw / 2}" y="${u.height - 4}" text-anchor="middle">${escXml(c.panel.xlabel || "")}</text>`);
    out.push(`<text transform="translate(12 ${bt + bh / 2}) rotate(-90)" text-anchor="middle">${escXml(c.panel.ylabel || "")}</text>`);
    const legend = new Map(fig.spec.legend.map((e) => [e.key, e]));
    const owner = u.initlab.owner;
    for (let i = 1; i < u.series.length; i++) {
      const s = u.series[i];
      if (!s.show) continue;
      const look = legend.get(owner[i - 1]) || { color: "#444", dash: [] };
      if (u.initlab.role[i - 1] !== "mean") continue;
      const pts = []; // the points it has, joined as the chart joins them (spanGaps)
      u.data[0].forEach((xv, j) => {
        const yv = u.data[i][j];
        if (yv === null || yv === undefined) return;
        pts.push(`${(bl + u.valToPos(xv, "x")).toFixed(1)},${(bt + u.valToPos(yv, "y")).toFixed(1)}`);
      });
      const dash = look.dash && look.dash.length ? ` stroke-dasharray="${look.dash.join(" ")}"` : "";
      if (pts.length) out.push(`<polyline fill="none" stroke="${look.color}" stroke-width="1.6"${dash} points="${pts.join(" ")}"/>`);
    }
    out.push("</g>");
    entries.forEach((e, i) => {
      const x = (i % cols) * LEGEND_COL_W + 8;
      const y = TITLE_H + u.height + LEGEND_PAD / 2 + Math.floor(i / cols) * LEGEND_ROW_H + LEGEND_ROW_H / 2;
      const dash = e.dash && e.dash.length ? ` stroke-dasharray="${e.dash.join(" ")}"` : "";
      out.push(`<line x1="${x}" y1="${y}" x2="${x + 22}" y2="${y}" stroke="${e.color}" stroke-width="2"${dash}/>`);
      out.push(`<text x="${x + 28}" y="${y + 4}">${escXml(e.key)}</text>`);
    });
    out.push("</svg>");
    return out.join("\n");
  }

  function toolbar(fig, index, panel, redraw) {
    const bar = el("div", "toolbar");
    if (panel.y && panel.y.toggle) {
      const base = panel.y.scale === "linear" ? "log" : panel.y.scale;
      const label = el("label", "toggle");
      const box = el("input");
      box.type = "checkbox";
      box.checked = (fig.scales[index] || panel.y.scale) !== "linear";
      box.addEventListener("change", () => { fig.scales[index] = box.checked ? base : "linear"; redraw(); });
      label.appendChild(box);
      label.appendChild(document.createTextNode(base === "asinh" ? " symlog y" : " log y"));
      bar.appendChild(label);
    }
    const png = el("button", "export", "PNG");
    png.type = "button";
    png.title = "save this chart as a PNG image";
    png.addEventListener("click", () => download(safeName(panel.filename || fig.spec.id) + ".png", chartPNG(fig.spec.id, index)));
    const svg = el("button", "export", "SVG");
    svg.type = "button";
    svg.title = "save this chart as an SVG drawing (for papers)";
    svg.addEventListener("click", () => download(safeName(panel.filename || fig.spec.id) + ".svg",
      "data:image/svg+xml;charset=utf-8," + encodeURIComponent(chartSVG(fig.spec.id, index))));
    bar.appendChild(png);
    bar.appendChild(svg);
    return bar;
  }

  // --- heatmaps (sweeps): a canvas per panel, a tooltip per cell ---------------------------------------------------
  const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
  function heatColor(scale, v) {
    if (v === null) return "#fff";
    let t;
    if (scale.log) t = (Math.log(v) - Math.log(scale.lo)) / ((Math.log(scale.hi) - Math.log(scale.lo)) || 1);
    else t = (v - scale.lo) / ((scale.hi - scale.lo) || 1);
    t = Math.min(1, Math.max(0, t));
    if (!scale.higher_is_better) t = 1 - t;
    const p = t * (VIRIDIS.length - 1), i = Math.min(VIRIDIS.length - 2, Math.floor(p)), f = p - i;
    const a = parseInt(VIRIDIS[i].slice(1), 16), b = parseInt(VIRIDIS[i + 1].slice(1), 16);
    const mix = (s) => Math.round(((a >> s) & 255) * (1 - f) + ((b >> s) & 255) * f);
    return `rgb(${mix(16)},${mix(8)},${mix(0)})`;
  }
  function dark(color) {
    const m = color.match(/\d+/g);
    if (!m) return false;
    return 0.299 * m[0] + 0.587 * m[1] + 0.114 * m[2] < 128;
  }

  function heatLayout(panel) {
    const cw = 70, ch = 34;
    const left = 16 + 7 * Math.max(...panel.ys.map((s) => s.length), 4) + 20, top = 8, bottom = 44;
    const w = left + cw * panel.xs.length + 12, h = top + ch * panel.ys.length + bottom;
    return { cw, ch, left, top, bottom, w, h };
  }

  function heatCells(panel, scale) {
    const L = heatLayout(panel);
    const out = [];
    panel.cells.forEach((row, i) => {
      const r = panel.flip ? panel.ys.length - 1 - i : i;
      row.forEach((cell, j) => {
        const fill = cell.s === "diverged" ? "#f6d5da" : heatColor(scale, cell.v);
        let text = cell.t, color = dark(fill) ? "#fff" : "#000";
        if (cell.s === "some_diverged") text += ` ×${cell.d}/${cell.n}`;
        if (cell.s === "diverged") { text = "× diverged"; color = "#b00020"; }
        if (cell.s === "unfinished") { text = "no run finished"; color = "#888"; }
        if (cell.s === "no_value") { text = "no value"; color = "#888"; }
        out.push({ x: L.left + j * L.cw, y: L.top + r * L.ch, w: L.cw, h: L.ch, fill, text, color, cell, i, j });
      });
    });
    return { L, cells: out };
  }

  function makeHeatmap(fig, panel, index, box) {
    const { L, cells } = heatCells(panel, fig.spec.scale);
    const pr = devicePixelRatio || 1;
    const canvas = el("canvas", "heat");
    canvas.width = Math.round(L.w * pr);
    canvas.height = Math.round(L.h * pr);
    canvas.style.width = L.w + "px";
    canvas.style.height = L.h + "px";
    const ctx = canvas.getContext("2d");
    ctx.scale(pr, pr);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, L.w, L.h);
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    cells.forEach((c) => {
      ctx.fillStyle = c.fill;
      ctx.fillRect(c.x + 1, c.y + 1, c.w - 2, c.h - 2);
      if (c.cell.s === "unfinished" || c.cell.s === "no_value") {
        ctx.strokeStyle = "#888"; ctx.setLineDash([2, 2]); ctx.strokeRect(c.x + 3, c.y + 3, c.w - 6, c.h - 6); ctx.setLineDash([]);
      }
      if (c.cell.s === "some_diverged" || c.cell.s === "diverged") {
        ctx.strokeStyle = "#b00020"; ctx.lineWidth = 1.5; ctx.strokeRect(c.x + 2, c.y + 2, c.w - 4, c.h - 4); ctx.lineWidth = 1;
      }
      ctx.fillStyle = c.color;
      ctx.fillText(c.text, c.x + c.w / 2, c.y + c.h / 2, c.w - 4);
    });
    ctx.fillStyle = "#333";
    panel.xs.forEach((t, j) => ctx.fillText(t, L.left + j * L.cw + L.cw / 2, L.top + panel.ys.length * L.ch + 12));
    ctx.fillText(panel.xlabel, L.left + (panel.xs.length * L.cw) / 2, L.h - 10);
    ctx.textAlign = "right";
    panel.ys.forEach((t, i) => {
      const r = panel.flip ? panel.ys.length - 1 - i : i;
      ctx.fillText(t, L.left - 6, L.top + r * L.ch + L.ch / 2, L.left - 24);
    });
    ctx.save();
    ctx.translate(10, L.top + (panel.ys.length * L.ch) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText(panel.ylabel, 0, 0);
    ctx.restore();
    box.appendChild(canvas);
    const tip = el("div", "tip");
    tip.hidden = true;
    box.appendChild(tip);
    canvas.addEventListener("mousemove", (ev) => {
      const rect = canvas.getBoundingClientRect();
      const x = ev.clientX - rect.left, y = ev.clientY - rect.top;
      const hit = cells.find((c) => x >= c.x && x < c.x + c.w && y >= c.y && y < c.y + c.h);
      if (!hit) { tip.hidden = true; return; }
      tip.textContent = "";
      tip.appendChild(el("div", "tip-x", hit.cell.l));
      const v = hit.cell.v === null ? hit.text : `${fig.spec.scale.label}: ${hit.cell.t}`;
      tip.appendChild(el("div", "tip-row", v));
      tip.appendChild(el("div", "tip-row", `runs ${hit.cell.n}, diverged ${hit.cell.d}`));
      tip.hidden = false;
      tip.style.left = (canvas.offsetLeft + hit.x + hit.w) + "px";
      tip.style.top = (canvas.offsetTop + hit.y) + "px";
    });
    canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
    return { canvas, cssWidth: L.w, heat: { L, cells }, panel };
  }

  function heatSVG(fig, c) {
    const { L, cells } = c.heat;
    const panel = c.panel;
    const W = L.w, H = L.h + TITLE_H;
    const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="11">`];
    out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
    out.push(`<text x="8" y="${TITLE_H / 2 + 4}" font-size="13" font-weight="600">${escXml(panelTitle(fig, panel).replace(/\n/g, " "))}</text>`);
    out.push(`<g transform="translate(0 ${TITLE_H})">`);
    cells.forEach((k) => {
      out.push(`<rect x="${k.x + 1}" y="${k.y + 1}" width="${k.w - 2}" height="${k.h - 2}" fill="${k.fill}"/>`);
      out.push(`<text x="${k.x + k.w / 2}" y="${k.y + k.h / 2 + 4}" text-anchor="middle" fill="${k.color}">${escXml(k.text)}</text>`);
    });
    panel.xs.forEach((t, j) => out.push(`<text x="${L.left + j * L.cw + L.cw / 2}" y="${L.top + panel.ys.length * L.ch + 16}" text-anchor="middle">${escXml(t)}</text>`));
    panel.ys.forEach((t, i) => {
      const r = panel.flip ? panel.ys.length - 1 - i : i;
      out.push(`<text x="${L.left - 6}" y="${L.top + r * L.ch + L.ch / 2 + 4}" text-anchor="end">${escXml(t)}</text>`);
    });
    out.push(`<text x="${L.left + (panel.xs.length * L.cw) / 2}" y="${L.h - 6}" text-anchor="middle">${escXml(panel.xlabel)}</text>`);
    out.push("</g></svg>");
    return out.join("\n");
  }

  // --- figures -----------------------------------------------------------------------------------------------------
  function panelsOf(fig) {
    return fig.spec.frames ? fig.spec.frames.panels[fig.frame] : fig.spec.panels;
  }

  function renderPanels(fig) {
    fig.charts.forEach((c) => { if (c.u) c.u.destroy(); });
    fig.charts = [];
    fig.grid.textContent = "";
    const spec = fig.spec;
    const avail = Math.max(320, fig.grid.clientWidth || fig.host.clientWidth || 1100);
    const cols = Math.max(1, Math.min(spec.columns || 2, Math.floor(avail / 330)));
    const width = Math.floor(avail / cols) - 14;
    panelsOf(fig).forEach((panel, index) => {
      const cell = el("div", "panel");
      cell.style.width = width + "px";
      const head = el("div", "panel-head");
      head.appendChild(el("span", "panel-title", (panel.title || "").replace(/\n/g, ", ")));
      cell.appendChild(head);
      const box = el("div", "plot");
      cell.appendChild(box);
      fig.grid.appendChild(cell);
      let c;
      if (panel.kind === "heatmap") {
        c = makeHeatmap(fig, panel, index, box);
      } else {
        const u = makeLineChart(fig, panel, index, box, width);
        c = { u, panel };
      }
      const redraw = () => {
        const old = fig.charts[index];
        const u = makeLineChart(fig, panel, index, box, width);
        if (old && old.u) { old.u.destroy(); old.u.initlab.tip.remove(); }
        fig.charts[index] = { u, panel };
        fitX(fig.charts[index], fig);
      };
      head.appendChild(toolbar(fig, index, panel, redraw));
      fig.charts.push(c);
    });
    fig.charts.forEach((c) => fitX(c, fig));
  }

  function renderFigure(host, spec) {
    const fig = { spec, host, hidden: new Set(), charts: [], frame: 0, scales: {}, legendItems: [] };
    figures[spec.id] = fig;
    if (spec.legend && spec.legend.length) buildLegend(fig, host);
    if (spec.frames) {
      const f = spec.frames;
      const row = el("div", "frames");
      const label = el("label", "", `${f.label}: `);
      const out = el("output", "frame-value", String(f.values[0]));
      const slider = el("input", "frame-slider");
      slider.type = "range";
      slider.min = "0";
      slider.max = String(f.values.length - 1);
      slider.step = "1";
      slider.value = "0";
      slider.disabled = f.values.length < 2;
      slider.setAttribute("aria-label", f.label);
      slider.addEventListener("input", () => {
        fig.frame = +slider.value;
        out.textContent = String(f.values[fig.frame]);
        renderPanels(fig);
      });
      label.appendChild(slider);
      row.appendChild(label);
      row.appendChild(out);
      row.appendChild(el("span", "muted", f.values.length < 2 ? " (one stored epoch)" : ` (${f.values.length} stored epochs: ${f.values.join(", ")})`));
      host.appendChild(row);
      fig.slider = slider;
    }
    fig.grid = el("div", "panels");
    host.appendChild(fig.grid);
    renderPanels(fig);
    if (fig.spec.sync) fig.charts.forEach((c) => { if (c.u) syncX(fig, c.u); });
  }

  function main() {
    DATA.figures.forEach((spec) => {
      const host = document.getElementById(spec.id);
      if (host) renderFigure(host, spec);
    });
    window.initlabReport = {
      figures,
      charts: (id) => figures[id].charts.map((c) => c.u || c.canvas),
      png: chartPNG,
      svg: chartSVG,
      layout: { TITLE_H, LEGEND_ROW_H, LEGEND_COL_W, LEGEND_PAD },
      setFrame: (id, i) => { const f = figures[id]; f.slider.value = String(i); f.slider.dispatchEvent(new Event("input")); },
    };
    document.documentElement.dataset.ready = "1";
  }
  main();
})();
