// The playground page: its controls, the URL that holds the whole state, and the WebSocket to the server that
// trains. Every value is validated by the server, which answers a bad one with a message shown here.
import { ARM_COLORS, decode, drawBoundary, drawNetwork, histogram, lineChart, positive, setHistogram } from "./views.js";

const $ = (id) => document.getElementById(id);
const MAX_ARMS = 4;
const MAX_POINTS = 4000; // curve points kept per series; older ones are thinned by half
const CHOICES = [
  ["Article presets", [["article:zero", "zero"], ["article:small", "too small (0.01)"],
    ["article:appropriate", "appropriate (He)"], ["article:large", "too large (×10)"]]],
  ["Catalog", ["zeros", "ones", "random_normal", "random_uniform", "truncated_normal", "glorot_normal",
    "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform", "kaiming_normal",
    "kaiming_uniform", "xavier_normal", "xavier_uniform", "orthogonal", "identity", "sparse", "variance_scaling"]],
  ["Schemes", ["auto", "lsuv", "keras", "torch", "critical"]],
];
const HAS_STD = ["random_normal", "normal", "gaussian", "truncated_normal", "truncated"];

// What tests and curious users can read: the latest numbers, as the page shows them.
const status = { connected: false, step: 0, frames: 0, errors: [], arms: [], setups: 0 };
window.playgroundStatus = status;

let ws = null;
let desc = null; // the current setup's description (points, plane, layer sizes, labels)
let points = null;
let playing = false;
let curves = null;
let charts = {};
let panels = [];

// --- the socket --------------------------------------------------------------------------------------------
function send(message) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

function connect() {
  ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onopen = () => {
    status.connected = true;
    $("connection").textContent = "connected";
    send({ type: "setup", query: location.search.slice(1) });
  };
  ws.onclose = () => {
    status.connected = false;
    $("connection").textContent = "disconnected: reload the page once the server runs";
    setPlaying(false);
  };
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "setup") onSetup(msg);
    else if (msg.type === "frame") onFrame(msg);
    else if (msg.type === "error") showErrors(msg.messages);
    else if (msg.type === "playing") setPlaying(msg.playing);
  };
}

function showErrors(messages) {
  status.errors.push(...messages);
  if (!messages.length) return;
  const list = $("error-list");
  list.replaceChildren(...messages.map((m) => Object.assign(document.createElement("li"), { textContent: m })));
  $("errors").hidden = false;
}

function setPlaying(value) {
  playing = value;
  $("play").textContent = playing ? "⏸ Pause" : "▶ Play";
}

// --- the state in the URL and the form ----------------------------------------------------------------------
function fillForm(query) {
  const q = new URLSearchParams(query);
  const get = (k, d = "") => q.get(k) ?? d;
  $("data").value = get("data", "circles");
  for (const k of ["n", "noise", "split", "seed", "speed", "layer"]) if (q.has(k)) $(k).value = get(k);
  const widths = get("widths", "10,5");
  $("widths").value = widths;
  const ws_ = widths.split(",").map(Number);
  $("depth").value = ws_.length;
  $("width").value = Math.max(...ws_);
  $("act").value = get("act", "relu");
  $("opt").value = get("opt", "adam");
  $("lr").value = Math.log10(Number(get("lr", "0.01")));
  $("lr").dataset.exact = get("lr", "0.01");
  const batch = Number(get("batch", "0"));
  $("batch-mode").value = batch ? "mini" : "full";
  $("batch").value = batch || Math.min(32, Number(get("n", "400")));
  $("batch").disabled = !batch;
  $("net").value = get("net", "weights");
  const fixed = get("data") === "dlai-circles";
  for (const k of ["n", "noise", "split"]) $(k).disabled = fixed;
  renderArms(q.getAll("arm"));
  updateOutputs();
}

function updateOutputs() {
  $("n-out").textContent = $("n").value;
  $("noise-out").textContent = Number($("noise").value).toFixed(2);
  $("split-out").textContent = `${Math.round(100 * $("split").value)}%`;
  $("depth-out").textContent = $("depth").value;
  $("width-out").textContent = $("width").value;
  $("lr-out").textContent = lrValue();
  $("speed-out").textContent = $("speed").value;
  $("layer-out").textContent = $("layer").value;
}

function lrValue() {
  if ($("lr").dataset.exact) return $("lr").dataset.exact;
  return Number((10 ** Number($("lr").value)).toPrecision(2)).toString();
}

function renderArms(arms) {
  const box = $("arms");
  box.replaceChildren();
  arms.forEach((text, i) => {
    const [name, ...opts] = text.split(";");
    const options = Object.fromEntries(opts.map((o) => o.split("=")));
    const row = document.createElement("div");
    row.className = "arm-row";
    row.style.setProperty("--arm-color", ARM_COLORS[i]);
    const select = document.createElement("select");
    select.className = "arm-name";
    for (const [group, names] of CHOICES) {
      const og = document.createElement("optgroup");
      og.label = group;
      for (const item of names) {
        const [value, label] = Array.isArray(item) ? item : [item, item];
        og.append(new Option(label, value));
      }
      select.append(og);
    }
    if (![...select.options].some((o) => o.value === name)) select.append(new Option(name, name));
    select.value = name;
    const std = Object.assign(document.createElement("input"), { type: "number", className: "arm-std", min: "0", step: "any", value: options.std ?? "0.05" });
    const scale = Object.assign(document.createElement("input"), { type: "number", className: "arm-scale", min: "0", step: "any", value: options.scale ?? "1" });
    const stdWrap = document.createElement("label");
    stdWrap.className = "std-wrap";
    stdWrap.append("σ ", std);
    stdWrap.hidden = !HAS_STD.includes(name);
    const scaleWrap = document.createElement("label");
    scaleWrap.append("× ", scale);
    const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "−", title: "remove this arm" });
    remove.disabled = arms.length === 1;
    remove.onclick = () => { row.remove(); changed(); };
    const opt = document.createElement("div");
    opt.className = "opts";
    opt.append(stdWrap, scaleWrap, remove);
    const swatch = Object.assign(document.createElement("span"), { className: "swatch" });
    row.append(swatch, select, opt);
    select.onchange = () => { stdWrap.hidden = !HAS_STD.includes(select.value); changed(); };
    std.onchange = changed;
    scale.onchange = changed;
    box.append(row);
  });
  $("add-arm").disabled = arms.length >= MAX_ARMS;
}

function armTexts() {
  return [...document.querySelectorAll(".arm-row")].map((row) => {
    const name = row.querySelector(".arm-name").value;
    let text = name;
    if (HAS_STD.includes(name)) text += `;std=${row.querySelector(".arm-std").value}`;
    const scale = row.querySelector(".arm-scale").value;
    if (scale !== "" && Number(scale) !== 1) text += `;scale=${scale}`;
    return text;
  });
}

function formQuery() {
  const q = new URLSearchParams();
  q.set("data", $("data").value);
  if ($("data").value !== "dlai-circles") {
    q.set("n", $("n").value); q.set("noise", $("noise").value); q.set("split", $("split").value);
  }
  q.set("widths", $("widths").value);
  q.set("act", $("act").value);
  q.set("opt", $("opt").value);
  q.set("lr", lrValue());
  q.set("batch", $("batch-mode").value === "full" ? "0" : $("batch").value);
  for (const arm of armTexts()) q.append("arm", arm);
  for (const k of ["seed", "speed", "layer", "net"]) q.set(k, $(k).value);
  return q.toString();
}

function changed() {
  send({ type: "setup", query: formQuery() });
}

// --- the server's answers -----------------------------------------------------------------------------------
function onSetup(msg) {
  status.setups += 1;
  replaceUrl(msg.query);
  fillForm(msg.query);
  $("errors").hidden = !msg.errors.length;
  if (msg.errors.length) showErrors(msg.errors);
  $("copy-command").dataset.text = msg.command;
  $("copy-python").dataset.text = msg.python;
  if (msg.live) return;
  desc = msg;
  $("layer").max = String(msg.layers.length - 1);
  points = msg.points && {
    x: decode(msg.points.x), y: decode(msg.points.y, Uint8Array),
    xTest: decode(msg.points.x_test), yTest: decode(msg.points.y_test, Uint8Array),
  };
  buildViews(msg);
}

function replaceUrl(query) {
  const url = `${location.pathname}?${query}`;
  if (url !== location.pathname + location.search) history.replaceState(null, "", url);
}

function buildViews(msg) {
  const labels = msg.labels;
  curves = { steps: [], arms: labels.map(() => ({ train: [], test: [], trainAcc: [], testAcc: [] })) };
  $("legend").replaceChildren(...labels.map((label, i) => {
    const s = document.createElement("span");
    s.innerHTML = `<i class="swatch" style="--arm-color:${ARM_COLORS[i]}"></i>`;
    s.append(label);
    return s;
  }));
  for (const c of Object.values(charts)) c.destroy();
  for (const id of ["cost-chart", "acc-chart", "std-chart", "grad-chart"]) $(id).replaceChildren();
  charts = {
    cost: lineChart($("cost-chart"), { arms: labels, log: true, dashedTests: true, xLabel: "step" }),
    acc: lineChart($("acc-chart"), { arms: labels, dashedTests: true, xLabel: "step", yRange: [0, 1] }),
    std: lineChart($("std-chart"), { arms: labels, log: true, xLabel: "layer" }),
    grad: lineChart($("grad-chart"), { arms: labels, log: true, xLabel: "layer" }),
  };
  const box = $("arm-panels");
  box.replaceChildren();
  panels = labels.map((label, i) => {
    const el = document.createElement("article");
    el.className = "arm";
    el.dataset.arm = String(i);
    el.style.setProperty("--arm-color", ARM_COLORS[i]);
    el.innerHTML = `<h3><span class="swatch"></span><span class="label"></span></h3>
      <dl class="stats"><dt>train cost</dt><dd class="train-cost"></dd><dt>acc</dt><dd class="train-acc"></dd>
      <dt>test cost</dt><dd class="test-cost"></dd><dt>acc</dt><dd class="test-acc"></dd></dl>
      <canvas class="boundary" width="230" height="230"></canvas>
      <div class="caption boundary-caption">decision boundary: train ●, test ○</div>
      <canvas class="network" width="230" height="140"></canvas>
      <div class="caption network-caption"></div>
      <div class="act-hist"></div><div class="caption act-caption"></div>
      <div class="grad-hist"></div><div class="caption grad-caption"></div>
      <ul class="findings"></ul>`;
    el.querySelector(".label").textContent = label;
    if (!msg.plane) {
      el.querySelector(".boundary").remove();
      el.querySelector(".boundary-caption").textContent = "no decision boundary: MNIST has 784 inputs";
    }
    box.append(el);
    return {
      el, act: histogram(el.querySelector(".act-hist"), ARM_COLORS[i]),
      grad: histogram(el.querySelector(".grad-hist"), ARM_COLORS[i]),
    };
  });
  status.arms = labels.map((label) => ({ label }));
}

const fmt = (v, digits = 4) => (v === null || v === undefined ? "diverged" : Number(v).toPrecision(digits));

function onFrame(frame) {
  if (!desc || frame.arms.length !== panels.length) return;
  status.step = frame.step;
  status.frames += 1;
  $("step-count").textContent = `step ${frame.step}`;
  record(frame);
  const layerName = frame.layer === desc.layers.length - 1 ? "output layer" : `hidden layer ${frame.layer}`;
  frame.arms.forEach((arm, i) => {
    const { el } = panels[i];
    const s = status.arms[i];
    Object.assign(s, { trainCost: arm.train_cost, testCost: arm.test_cost, trainAcc: arm.train_acc, testAcc: arm.test_acc, step: frame.step });
    for (const [cls, key, digits] of [["train-cost", "train_cost", 4], ["test-cost", "test_cost", 4], ["train-acc", "train_acc", 3], ["test-acc", "test_acc", 3]]) {
      const dd = el.querySelector(`.${cls}`);
      dd.textContent = fmt(arm[key], digits);
      dd.dataset.value = String(arm[key]);
    }
    if (arm.boundary && points) {
      s.boundaryRange = drawBoundary(el.querySelector(".boundary"), arm.boundary, desc, points);
      el.dataset.boundaryRange = String(s.boundaryRange);
    }
    const max = drawNetwork(el.querySelector(".network"), arm.network, desc.layers, desc.drawn_units, ARM_COLORS[i]);
    const wider = desc.layers.some((n) => n > desc.drawn_units) ? ` (first ${desc.drawn_units} units per layer)` : "";
    el.querySelector(".network-caption").textContent = `${frame.network}, max |·| ${fmt(max, 3)}${wider}`;
    setHistogram(panels[i].act, arm.act_hist);
    setHistogram(panels[i].grad, arm.grad_hist);
    el.querySelector(".act-caption").textContent = `activations of ${layerName} (training set)`;
    el.querySelector(".grad-caption").textContent = `∂L/∂W of ${layerName} (last step)`;
    if (arm.findings) showFindings(el.querySelector(".findings"), arm.findings, s);
  });
  charts.std.setData([desc.layers.slice(1).map((_, k) => k + 1), ...frame.arms.map((a) => positive(a.std))]);
  charts.grad.setData([desc.layers.slice(1).map((_, k) => k + 1), ...frame.arms.map((a) => positive(a.grad_norm))]);
  requestAnimationFrame(() => send({ type: "ack" }));
}

function showFindings(list, findings, s) {
  s.findings = findings.map((f) => f.kind);
  if (!findings.length) {
    list.replaceChildren(Object.assign(document.createElement("li"), { className: "ok", textContent: "No problem found by initlab.diagnose." }));
    return;
  }
  list.replaceChildren(...findings.map((f) => {
    const li = document.createElement("li");
    li.className = f.severity;
    li.dataset.kind = f.kind;
    const b = document.createElement("b");
    b.textContent = f.kind.replace(/_/g, " ");
    const small = document.createElement("small");
    small.textContent = f.suggestion;
    li.append(b, ": ", f.message, small);
    return li;
  }));
}

function record(frame) {
  const h = curves;
  if (h.steps.length && frame.step <= h.steps[h.steps.length - 1]) {
    // a reset: start the curves again
    h.steps.length = 0;
    for (const a of h.arms) for (const k of Object.keys(a)) a[k].length = 0;
  }
  h.steps.push(frame.step);
  frame.arms.forEach((arm, i) => {
    const a = h.arms[i];
    a.train.push(arm.train_cost); a.test.push(arm.test_cost); a.trainAcc.push(arm.train_acc); a.testAcc.push(arm.test_acc);
  });
  if (h.steps.length > MAX_POINTS) {
    const keep = (arr) => arr.filter((_, k) => k % 2 === 0 || k === arr.length - 1);
    h.steps = keep(h.steps);
    for (const a of h.arms) for (const k of Object.keys(a)) a[k] = keep(a[k]);
  }
  charts.cost.setData([h.steps, ...h.arms.flatMap((a) => [positive(a.train), positive(a.test)])]);
  charts.acc.setData([h.steps, ...h.arms.flatMap((a) => [a.trainAcc, a.testAcc])]);
}

// --- the controls -------------------------------------------------------------------------------------------
function wire() {
  $("play").onclick = () => send({ type: playing ? "pause" : "play" });
  $("step").onclick = () => send({ type: "step" });
  $("reset").onclick = () => send({ type: "reset" });
  $("errors-close").onclick = () => { $("errors").hidden = true; };
  for (const id of ["data", "n", "noise", "split", "act", "opt", "seed", "speed", "layer", "net", "widths", "batch"]) {
    $(id).addEventListener("change", changed);
  }
  for (const id of ["n", "noise", "split", "depth", "width", "speed", "layer"]) $(id).addEventListener("input", updateOutputs);
  $("lr").addEventListener("input", () => { delete $("lr").dataset.exact; updateOutputs(); });
  $("lr").addEventListener("change", changed);
  const resize = () => { $("widths").value = Array($("depth").value).fill($("width").value).join(","); changed(); };
  $("depth").addEventListener("change", resize);
  $("width").addEventListener("change", resize);
  $("batch-mode").addEventListener("change", () => { $("batch").disabled = $("batch-mode").value === "full"; changed(); });
  $("add-arm").onclick = () => { renderArms([...armTexts(), "he_normal"]); changed(); };
  $("presets").onclick = () => {
    renderArms(["article:zero", "article:small", "article:appropriate", "article:large"]);
    changed();
  };
  for (const [id, title] of [["copy-command", "The equivalent initlab commands"], ["copy-python", "The equivalent Python code"]]) {
    $(id).onclick = () => {
      const text = $(id).dataset.text || "";
      $("copy-title").textContent = title + " (copied to the clipboard when the browser allows it):";
      $("copy-text").value = text;
      $("copy-dialog").showModal();
      if (navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
    };
  }
  document.addEventListener("keydown", (e) => {
    if (e.code === "Space" && !["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName)) {
      e.preventDefault();
      $("play").click();
    }
  });
}

wire();
connect();
