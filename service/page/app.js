// The draw-a-digit page: a client of the public API like any other.
// POST /predict (the answer) and POST /preprocess (what the network reads: the digit
// thickened, deskewed and centred inside the model), each with the canvas exported as a
// PNG, or with the file the user chose; POST /feedback (the same image, the digit the
// user says it is and the answer shown) when the user corrects an answer. No other
// request is made.
"use strict";

const DEBOUNCE_MS = 250;
// Which tensor of the model /preprocess's PNG is (service/schemas.py SEEN_HEADER): each
// has its caption on the page, data-tensor naming it.
const SEEN_HEADER = "X-Model-Tensor";
const captions = document.querySelectorAll("[data-tensor]");
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const els = Object.fromEntries(
  ["digit", "confidence", "bars", "error", "seen", "clear", "file", "correct", "truth",
   "stored"].map(
    (id) => [id, document.getElementById(id)]));
let drawing = false, dirty = false, timer = 0, sequence = 0;
let shown = null; // {blob, name, digit}: the image whose answer is on screen

function blank() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  dirty = false;
}

function reset() {
  blank();
  sequence += 1; // answers still on their way are for a drawing that is gone
  els.digit.textContent = "–";
  els.confidence.textContent = "Draw a digit to start.";
  els.bars.replaceChildren();
  els.seen.removeAttribute("src");
  showError("");
  offerCorrection(null);
}

// "Wrong? It is a ...": offered for the answer on screen, and for it only.
function offerCorrection(answer) {
  shown = answer;
  els.correct.hidden = !answer;
  els.stored.textContent = "";
  els.stored.classList.remove("error");
}

function showError(message) {
  els.error.textContent = message;
  els.error.hidden = !message;
}

// Drawing: white ink on black, as MNIST; pointer events cover mouse, pen and touch.
function point(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
}

pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 20;
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(...point(e));
  ctx.lineTo(...point(e));
  ctx.stroke();
  dirty = true;
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  ctx.lineTo(...point(e));
  ctx.stroke();
  schedule();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    schedule();
  });
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (dirty) pad.toBlob((png) => classify(png, "drawing.png"), "image/png");
  }, DEBOUNCE_MS);
}

async function post(path, blob, name, fields = {}) {
  const form = new FormData();
  form.append("image", blob, name);
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  const response = await fetch(path, { method: "POST", body: form });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function asDataUrl(blob) { // img-src allows data: URLs, not blob: ones (strict CSP)
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

async function classify(blob, name) {
  const mine = ++sequence;
  try {
    const [answer, seen] = await Promise.all([
      post("/predict", blob, name).then((r) => r.json()),
      post("/preprocess", blob, name).then(async (r) => ({
        src: await asDataUrl(await r.blob()), tensor: r.headers.get(SEEN_HEADER) })),
    ]);
    if (mine !== sequence) return;
    showError("");
    render(answer, seen);
    offerCorrection({ blob, name, digit: answer.digit });
  } catch (err) {
    if (mine !== sequence) return;
    els.digit.textContent = "–";
    els.confidence.textContent = "No answer.";
    els.bars.replaceChildren();
    els.seen.removeAttribute("src");
    offerCorrection(null);
    showError(err.message);
  }
}

// The image /preprocess answered, under the caption of what it is.
function showSeen(seen) {
  els.seen.src = seen.src;
  for (const caption of captions) {
    caption.hidden = caption.dataset.tensor !== seen.tensor;
    if (!caption.hidden) {
      els.seen.alt = caption.dataset.alt;
      els.seen.setAttribute("aria-describedby", caption.id);
    }
  }
}

function render(answer, seen) {
  els.digit.textContent = String(answer.digit);
  els.confidence.textContent =
    `It is a ${answer.digit}, with ${(answer.confidence * 100).toFixed(1)} % confidence.`;
  showSeen(seen);
  els.bars.replaceChildren(...answer.probabilities.map((p, d) => {
    const item = document.createElement("li");
    if (d === answer.digit) item.className = "top";
    const label = document.createElement("span");
    label.textContent = String(d);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(p * 100, 0.5)}%`;
    const value = document.createElement("span");
    value.textContent = `${(p * 100).toFixed(1)} %`;
    item.setAttribute("aria-label", `${d}: ${(p * 100).toFixed(1)} percent`);
    item.append(label, bar, value);
    return item;
  }));
}

async function correct(digit) {
  const answer = shown;
  if (!answer) return;
  els.stored.classList.remove("error");
  els.stored.textContent = "Sending…";
  try {
    const row = await post("/feedback", answer.blob, answer.name,
                           { digit: String(digit), answered: String(answer.digit) })
      .then((r) => r.json());
    if (answer !== shown) return; // the drawing changed meanwhile
    els.stored.textContent = `Stored: it is a ${row.digit}. Thank you.`;
  } catch (err) {
    if (answer !== shown) return;
    els.stored.classList.add("error");
    els.stored.textContent = `Not stored: ${err.message}`;
  }
}

// A photo: shown on the pad, and sent as it is (the service normalises it).
async function useFile(file) {
  if (!file) return;
  blank();
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const w = bitmap.width * scale, h = bitmap.height * scale;
    ctx.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  } catch (_) { /* not displayable here: the service says what is wrong with it */ }
  classify(file, file.name);
}

els.clear.addEventListener("click", reset);
els.truth.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-digit]");
  if (button) correct(Number(button.dataset.digit));
});
pad.addEventListener("keydown", (e) => {
  if (e.key === "Delete" || e.key === "Backspace" || e.key === "Escape") reset();
});
els.file.addEventListener("change", () => { useFile(els.file.files[0]); els.file.value = ""; });
pad.addEventListener("dragover", (e) => { e.preventDefault(); pad.classList.add("dragging"); });
pad.addEventListener("dragleave", () => pad.classList.remove("dragging"));
pad.addEventListener("drop", (e) => {
  e.preventDefault();
  pad.classList.remove("dragging");
  useFile(e.dataTransfer.files[0]);
});

reset();
