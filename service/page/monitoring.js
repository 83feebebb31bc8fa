// The answer-quality page: polls GET /monitoring and draws what it says, live against
// the reference, as SVG. No other request is made; the drift history is kept here, so it
// starts when the page is opened. `?every=2` polls every 2 seconds (1 to 60; default 5).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const SVG_TAGS = new Set(["svg", "rect", "line", "text", "polyline", "circle"]);
// The bar plots' scale: the first of these at or above the largest share.
const NICE_MAXIMA = [0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1];
const HISTORY_POINTS = 360; // polls kept for the score plots: 30 minutes at the default
const POLL_MS = 1000 * Math.min(Math.max(
  Number(new URLSearchParams(location.search).get("every")) || 5, 1), 60);
const EXPLAIN = {
  "ok": (d) => `Every signal is within its threshold over ${d.live.answers} answers.`,
  "drift": (d) => `Above its threshold: ${drifting(d).join(", ")}. The service is seeing ` +
    "inputs unlike those the model was checked on: its answers may be wrong.",
  "no reference": () => "This model has no reference profile (it was registered without " +
    "one): the plots show live data only, and no drift is computed.",
  "too few answers": (d) => `${d.live.answers} answers so far: fewer than ` +
    `${d.drift.min_answers} say nothing yet (sampling noise alone would look like drift).`,
  "monitoring off": () => "The service observes no answers (its monitoring setting is off).",
};
const els = Object.fromEntries(
  ["status", "status-detail", "answers", "rejected", "low-confidence", "model-version",
    "error", "updated", "mix-plot", "mix-table", "hist-plot", "hist-table", "hist-choice",
    "hist-name", "drift-table", "drift-empty", "challenger-empty", "challenger-body",
    "challenger-version", "shadow-share", "shadow-answers", "shadow-agreement",
    "shadow-dropped", "shadow-latency", "disagree-plot", "disagree-table", "feedback-empty",
    "feedback-body", "feedback-answers", "feedback-champion", "feedback-challenger",
    "feedback-plot", "confusion-champion", "confusion-challenger"].map((id) => [id, document.getElementById(id)]));
let history = []; // per poll: {signal: score}
let modelVersion = null, latest = null;

function drifting(data) {
  return Object.entries(data.drift.signals).filter(([, s]) => s.score > 1).map(([n]) => n);
}

const percent = (share) => `${(share * 100).toFixed(1)} %`;
const sum = (values) => values.reduce((a, b) => a + b, 0);
const shares = (counts) => { const n = sum(counts); return counts.map((c) => n ? c / n : 0); };

function node(tag, attrs = {}, text = "") {
  const el = SVG_TAGS.has(tag) ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  if (text) el.textContent = text;
  return el;
}

// Paired horizontal bars, one row per label: live on top, the reference under it.
function pairedBars(svg, labels, live, reference) {
  const row = 22, left = 60, width = 360, top = 18, span = width - left - 8;
  const max = NICE_MAXIMA.find((m) => m >= Math.max(...live, ...(reference || []))) || 1;
  const x = (share) => left + span * share / max;
  svg.setAttribute("viewBox", `0 0 ${width} ${top + row * labels.length + 4}`);
  const parts = [];
  for (const [tick, anchor] of [[0, "start"], [max / 2, "middle"], [max, "end"]]) {
    parts.push(node("line", { x1: x(tick), x2: x(tick), y1: top - 4,
      y2: top + row * labels.length, class: "grid" }));
    parts.push(node("text", { x: x(tick), y: top - 6, "text-anchor": anchor, class: "tick" },
      `${Math.round(tick * 100)} %`));
  }
  labels.forEach((label, i) => {
    const y = top + row * i;
    parts.push(node("text", { x: left - 6, y: y + row / 2 + 4, class: "label" }, label));
    parts.push(node("rect", { x: left, y: y + 2, width: Math.max(span * live[i] / max, 0.5),
      height: reference ? 8 : 16, class: "live" }));
    if (reference) {
      parts.push(node("rect", { x: left, y: y + 10, height: 8, class: "reference",
        width: Math.max(span * reference[i] / max, 0.5) }));
    }
  });
  svg.replaceChildren(...parts);
}

function numbersTable(table, head, rows) {
  const header = node("tr");
  header.append(...head.map((h) => node("th", { scope: "col" }, h)));
  table.replaceChildren(node("thead"), node("tbody"));
  table.tHead.append(header);
  for (const cells of rows) {
    const tr = node("tr");
    tr.append(node("th", { scope: "row" }, cells[0]), ...cells.slice(1).map((c) => node("td", {}, c)));
    table.tBodies[0].append(tr);
  }
}

// One plot and its text alternatives (an aria-label and a table of the numbers).
function comparison(svg, table, what, labels, live, reference) {
  pairedBars(svg, labels, live, reference);
  const said = labels.map((l, i) => `${l}: ${percent(live[i])}` +
    (reference ? ` (reference ${percent(reference[i])})` : ""));
  svg.setAttribute("aria-label", `${what}, live share` +
    (reference ? " against the reference" : "") + ": " + said.join("; "));
  numbersTable(table, [what, "Live", "Reference"], labels.map(
    (l, i) => [l, percent(live[i]), reference ? percent(reference[i]) : "–"]));
}

function bucketLabels(edges) {
  return [...edges.map((e) => `≤ ${e}`), `> ${edges[edges.length - 1]}`];
}

function referenceHistogram(reference, name) {
  if (!reference) return null;
  const hist = reference[name] || (reference.inputs || {})[name];
  return hist ? hist.shares : null;
}

function renderMix(data) {
  const live = data.live.digit_share || shares(data.live.digit_counts);
  comparison(els["mix-plot"], els["mix-table"], "Digit", live.map((_, d) => String(d)), live,
    data.reference ? data.reference.digit_share : null);
}

function renderHistogram(data) {
  const name = els["hist-choice"].value;
  els["hist-name"].textContent = els["hist-choice"].selectedOptions[0].textContent;
  const hist = data.live.histograms[name];
  comparison(els["hist-plot"], els["hist-table"], "Bucket", bucketLabels(hist.edges),
    shares(hist.counts), referenceHistogram(data.reference, name));
}

// A signal's score over the polls this page saw, the alert threshold (1) dashed.
function sparkline(name, scores) {
  const width = 200, height = 40, top = Math.max(2, ...scores) * 1.05;
  const x = (i) => scores.length > 1 ? 4 + (width - 8) * i / (scores.length - 1) : width / 2;
  const y = (score) => height - 2 - (height - 4) * score / top;
  const last = scores[scores.length - 1];
  const svg = node("svg", { viewBox: `0 0 ${width} ${height}`, class: "spark", role: "img",
    "aria-label": `${name}: score ${last.toFixed(2)} now; between ` +
      `${Math.min(...scores).toFixed(2)} and ${Math.max(...scores).toFixed(2)} ` +
      `over the last ${scores.length} polls; drift above 1` });
  svg.append(
    node("line", { x1: 0, x2: width, y1: y(1), y2: y(1), class: "threshold" }),
    node("polyline", { points: scores.map((s, i) => `${x(i)},${y(s)}`).join(" "),
      class: "score" }),
    node("circle", { cx: x(scores.length - 1), cy: y(last), r: 3,
      class: last > 1 ? "over" : "under" }));
  return svg;
}

function renderDrift(data) {
  const signals = data.drift ? data.drift.signals : {};
  const body = els["drift-table"].tBodies[0];
  body.replaceChildren(...Object.entries(signals).map(([name, signal]) => {
    const scores = history.map((h) => h[name]).filter((s) => s !== undefined);
    const tr = node("tr", { class: signal.score > 1 ? "over" : "" });
    const plot = node("td");
    plot.append(sparkline(name, scores));
    tr.append(node("th", { scope: "row" }, name), plot,
      node("td", {}, signal.distance.toFixed(3)), node("td", {}, signal.threshold.toFixed(3)),
      node("td", {}, signal.score.toFixed(2)));
    return tr;
  }));
  const any = Object.keys(signals).length > 0;
  els["drift-table"].hidden = !any;
  els["drift-empty"].textContent = any ? ""
    : "No scores: drift is computed once there is a reference and enough answers.";
}

function renderStatus(data, status) {
  els.status.textContent = status;
  els.status.dataset.status = status;
  els["status-detail"].textContent = (EXPLAIN[status] || (() => ""))(data);
  els["model-version"].textContent = data.model_version || "–";
  for (const legend of document.querySelectorAll(".reference-legend")) {
    legend.hidden = !data.reference;
  }
  const live = data.monitoring === "off" ? null : data.live;
  els.answers.textContent = live ? String(live.answers) : "–";
  els.rejected.textContent = live ? String(live.rejected) : "–";
  els["low-confidence"].textContent = live ? percent(live.low_confidence_share) +
    (data.reference ? ` (reference ${percent(data.reference.low_confidence_share)})` : "") : "–";
}

const DIGITS = [...Array(10).keys()].map(String);
const orDash = (value, show) => value === null || value === undefined ? "–" : show(value);

// A 10×10 matrix of counts as a table: `rows` and `columns` say what its axes are.
function matrixTable(table, caption, rows, columns, matrix) {
  numbersTable(table, [`${rows} ╲ ${columns}`, ...DIGITS],
    matrix.map((counts, digit) => [String(digit), ...counts.map(String)]));
  table.prepend(node("caption", {}, caption));
}

// Paired bars drawn as an image with its numbers in words (every plot says its shares).
function sharesPlot(svg, what, live, other, otherName) {
  pairedBars(svg, DIGITS, live, other);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${what}: ` + DIGITS.map((d, i) => `${d}: ` +
    percent(live[i]) + (other ? ` (${otherName} ${percent(other[i])})` : "")).join("; "));
}

function renderShadow(shadow) {
  const empty = els["challenger-empty"];
  els["challenger-body"].hidden = !shadow;
  if (!shadow) {
    empty.textContent = "No challenger: this service scores no second model version " +
      "(MNIST_CHALLENGER_TAG is not set).";
    return;
  }
  empty.textContent = shadow.answers ? "" : "No image scored in shadow yet.";
  els["challenger-version"].textContent = shadow.challenger_version;
  els["shadow-share"].textContent = percent(shadow.share);
  els["shadow-answers"].textContent = String(shadow.answers);
  els["shadow-agreement"].textContent = orDash(shadow.agreement, percent);
  els["shadow-dropped"].textContent = String(shadow.dropped);
  els["shadow-latency"].textContent = orDash(shadow.latency_ratio, (r) => `${r.toFixed(2)}×`);
  const byDigit = shadow.disagreements.map((row) => shadow.answers ? sum(row) / shadow.answers : 0);
  sharesPlot(els["disagree-plot"], "Images the challenger answered otherwise, by the " +
    "champion's digit, share of the images scored", byDigit, null, "");
  matrixTable(els["disagree-table"], "Disagreements", "champion", "challenger",
    shadow.disagreements);
}

// Each true digit's share of feedback the model answered right (0 where none came).
const perDigitAccuracy = (confusion) => confusion.map((row, d) => sum(row) ? row[d] / sum(row) : 0);

function renderFeedback(feedback, hasChallenger) {
  const champion = feedback.champion, challenger = feedback.challenger;
  const any = champion.answers > 0 || (challenger && challenger.answers > 0);
  els["feedback-body"].hidden = !any;
  els["feedback-empty"].textContent = any ? "" : "No feedback yet: digits users correct " +
    "or confirm on the draw page (POST /feedback) are counted here.";
  if (!any) return;
  els["feedback-answers"].textContent = String(champion.answers);
  const accuracy = (a) => a ? orDash(a.accuracy, percent) + ` of ${a.answers}` : "–";
  els["feedback-champion"].textContent = accuracy(champion);
  els["feedback-challenger"].textContent = challenger ? accuracy(challenger)
    : (hasChallenger ? "–" : "no challenger");
  for (const legend of document.querySelectorAll(".challenger-legend")) {
    legend.hidden = !challenger;
  }
  sharesPlot(els["feedback-plot"], "Accuracy on feedback per true digit, champion",
    perDigitAccuracy(champion.confusion), challenger ? perDigitAccuracy(challenger.confusion)
      : null, "challenger");
  matrixTable(els["confusion-champion"], "Champion", "truth", "answer", champion.confusion);
  els["confusion-challenger"].hidden = !challenger;
  if (challenger) {
    matrixTable(els["confusion-challenger"], "Challenger", "truth", "answer",
      challenger.confusion);
  }
}

function render(data) {
  if (data.model_version !== modelVersion) history = []; // another model: another story
  modelVersion = data.model_version;
  latest = data;
  const off = data.monitoring === "off";
  renderStatus(data, off ? "monitoring off" : data.drift.status);
  renderShadow(data.shadow || null);  // whether monitoring observes answers or not
  if (data.feedback) renderFeedback(data.feedback, Boolean(data.shadow));
  if (off) return;
  const scores = Object.fromEntries(
    Object.entries(data.drift.signals).map(([name, signal]) => [name, signal.score]));
  if (Object.keys(scores).length) history = [...history, scores].slice(-HISTORY_POINTS);
  renderMix(data);
  renderHistogram(data);
  renderDrift(data);
}

function showError(message) {
  els.error.textContent = message;
  els.error.hidden = !message;
}

async function poll() {
  try {
    const response = await fetch("/monitoring", { cache: "no-store" });
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON: said below */ }
    if (!response.ok || !body) {
      throw new Error((body && body.error) || `HTTP ${response.status}`);
    }
    render(body);
    showError("");
    els.updated.textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  } catch (err) {
    showError(`/monitoring failed: ${err.message}. Trying again every ${POLL_MS / 1000} s.`);
    if (!latest) {
      els.status.textContent = els.status.dataset.status = "unknown";
      els["status-detail"].textContent = "The service has not said yet.";
    }
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

els["hist-choice"].addEventListener("change", () => {
  if (latest && latest.monitoring !== "off") renderHistogram(latest);
});
poll();
