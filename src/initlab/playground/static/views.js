// Drawing the playground's views: the decision boundary, the network, and the uPlot charts.
import uPlot from "./vendor/uplot/uPlot.esm.js";

export const ARM_COLORS = ["#1f6fd1", "#d2452f", "#2a9d47", "#8e44ad"];
// Class colours (orange, blue, green: the TensorFlow playground's pair plus a third).
const CLASS_RGB = [[240, 140, 30], [20, 110, 200], [60, 170, 80]];
const FLOOR = 1e-10; // log-scale charts cannot show 0; vanished values are drawn at this floor

export function decode(b64, type = Float32Array) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new type(bytes.buffer);
}

// --- decision boundary ------------------------------------------------------------------------------------
export function drawBoundary(canvas, frame, desc, points) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, g = desc.grid;
  const p = decode(frame.p, Uint8Array);
  const cls = frame.cls ? decode(frame.cls, Uint8Array) : null;
  const img = new ImageData(g, g);
  let lo = 255, hi = 0;
  for (let i = 0; i < g * g; i++) {
    let rgb, strength;
    if (cls) {
      rgb = CLASS_RGB[cls[i] % CLASS_RGB.length];
      strength = p[i] / 255;
      lo = Math.min(lo, cls[i] * 255 + p[i]); hi = Math.max(hi, cls[i] * 255 + p[i]);
    } else {
      const t = p[i] / 255;
      rgb = CLASS_RGB[0].map((c, k) => c + (CLASS_RGB[1][k] - c) * t);
      strength = Math.abs(2 * t - 1);
      lo = Math.min(lo, p[i]); hi = Math.max(hi, p[i]);
    }
    const a = 0.25 + 0.55 * strength;
    img.data[4 * i] = 255 + (rgb[0] - 255) * a;
    img.data[4 * i + 1] = 255 + (rgb[1] - 255) * a;
    img.data[4 * i + 2] = 255 + (rgb[2] - 255) * a;
    img.data[4 * i + 3] = 255;
  }
  const off = new OffscreenCanvas(g, g);
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, W, H);
  const [x0, x1, y0, y1] = desc.plane;
  const sx = (x) => ((x - x0) / (x1 - x0)) * W, sy = (y) => ((y1 - y) / (y1 - y0)) * H;
  for (const [xs, ys, test] of [[points.x, points.y, false], [points.xTest, points.yTest, true]]) {
    for (let i = 0; i < ys.length; i++) {
      const rgb = CLASS_RGB[ys[i] % CLASS_RGB.length];
      ctx.beginPath();
      ctx.arc(sx(xs[2 * i]), sy(xs[2 * i + 1]), test ? 2.6 : 2.2, 0, 2 * Math.PI);
      ctx.fillStyle = test ? "#fff" : `rgb(${rgb})`;
      ctx.strokeStyle = test ? `rgb(${rgb})` : "#fff";
      ctx.lineWidth = test ? 1.4 : 0.8;
      ctx.fill(); ctx.stroke();
    }
  }
  return (hi - lo) / 255; // how much the prediction varies over the plane: 0 for a flat boundary
}

// --- network -----------------------------------------------------------------------------------------------
export function drawNetwork(canvas, layers, sizes, drawn, color) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  const cols = sizes.length, padX = 10, padY = 10;
  const x = (j) => padX + (cols === 1 ? 0 : (j * (W - 2 * padX)) / (cols - 1));
  const shown = sizes.map((s) => Math.min(s, drawn));
  const y = (j, i) => padY + ((i + 0.5) * (H - 2 * padY)) / shown[j];
  let max = 0;
  const values = layers.map((l) => decode(l.v));
  for (const v of values) for (const w of v) max = Math.max(max, Math.abs(w));
  max = max || 1;
  ctx.lineCap = "round";
  values.forEach((v, j) => {
    const { rows, cols: c } = layers[j];
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < c; k++) {
        const w = v[r * c + k], t = Math.abs(w) / max;
        if (t < 0.02) continue;
        ctx.strokeStyle = w > 0 ? `rgba(20,110,200,${0.15 + 0.85 * t})` : `rgba(240,140,30,${0.15 + 0.85 * t})`;
        ctx.lineWidth = 0.3 + 2.7 * t;
        ctx.beginPath(); ctx.moveTo(x(j), y(j, k)); ctx.lineTo(x(j + 1), y(j + 1, r)); ctx.stroke();
      }
    }
  });
  ctx.fillStyle = color;
  shown.forEach((s, j) => {
    const radius = Math.max(1.2, Math.min(4, (H - 2 * padY) / s / 3));
    for (let i = 0; i < s; i++) { ctx.beginPath(); ctx.arc(x(j), y(j, i), radius, 0, 2 * Math.PI); ctx.fill(); }
  });
  return max;
}

// --- charts ------------------------------------------------------------------------------------------------
function axisStyle() {
  return { stroke: "#555", grid: { stroke: "#eee", width: 1 }, ticks: { stroke: "#ddd", width: 1 }, size: 48 };
}

// Tick labels: powers of ten as 1e-6 on a log axis (and only every few decades when they crowd), compact numbers on
// a linear one.
function logTicks(u, splits) {
  const decades = splits.filter((v) => Number.isInteger(Math.log10(v)));
  const every = Math.max(1, Math.ceil(decades.length / 6));
  return splits.map((v) => {
    const e = Math.log10(v);
    if (!Number.isInteger(e) || e % every !== 0) return "";
    return e === 0 ? "1" : Math.abs(e) <= 2 ? String(v) : `1e${e}`;
  });
}
const linTicks = (u, splits) => splits.map((v) => (v !== 0 && (Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3) ? v.toExponential(0) : String(+v.toPrecision(3))));

export function lineChart(el, { arms, log = false, dashedTests = false, xLabel = "", yRange = null, width = 380 }) {
  const series = [{ label: xLabel }];
  arms.forEach((label, i) => {
    series.push({ label: `${label}${dashedTests ? " train" : ""}`, stroke: ARM_COLORS[i], width: 1.6, spanGaps: true });
    if (dashedTests) series.push({ label: `${label} test`, stroke: ARM_COLORS[i], width: 1.2, dash: [5, 4], spanGaps: true });
  });
  const y = log ? { distr: 3 } : {};
  if (yRange) y.range = () => yRange;
  const xAxis = { ...axisStyle(), values: linTicks };
  if (xLabel === "layer") xAxis.incrs = [1, 2, 5, 10, 20];
  const opts = {
    width, height: 190, legend: { show: false }, cursor: { drag: { x: false, y: false } },
    scales: { x: { time: false }, y }, series, axes: [xAxis, { ...axisStyle(), values: log ? logTicks : linTicks }],
  };
  return new uPlot(opts, [[], ...series.slice(1).map(() => [])], el);
}

export function histogram(el, color, width = 230) {
  const opts = {
    width, height: 90, legend: { show: false }, cursor: { show: false },
    scales: { x: { time: false, range: (u, a, b) => [a, b] }, y: { range: (u, a, b) => [0, Math.max(1, b)] } },
    series: [{}, { stroke: color, fill: color + "88", width: 1, paths: uPlot.paths.bars({ size: [1, Infinity], gap: 0 }) }],
    axes: [{ ...axisStyle(), size: 24, font: "10px sans-serif", values: linTicks }, { show: false }],
  };
  return new uPlot(opts, [[0, 1], [0, 0]], el);
}

export function setHistogram(chart, hist) {
  if (!hist) { chart.setData([[0, 1], [0, 0]]); return; }
  const n = hist.counts.length, step = (hist.hi - hist.lo) / n;
  const xs = hist.counts.map((_, i) => hist.lo + (i + 0.5) * step);
  chart.setData([xs, hist.counts]);
}

export function positive(values) {
  return values.map((v) => (v === null ? null : Math.max(FLOOR, v)));
}
