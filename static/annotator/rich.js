// Rich feedback page (RichHF-18K protocol): points of two kinds on the image, misaligned prompt words,
// Likert 1–5 scores. Points are kept in image coordinates normalised to [0, 1]; each is drawn as a disk of
// radius effective_radius × displayed image height in an SVG overlay sized to the displayed image.
// The image is drawn as large as its column and 70 % of the window's height allow (small images are scaled
// up); each point's centre is a coloured disc in a white ring and a dark one, visible on any image.
// A key or tap while an answer is saved or the next image loads is not used, and the page says so; after an
// answer the next image is scrolled into view when it is off screen (a phone, with the scores below it).
import {
  byId as $, fetchNextTask, fitImage, isShortcutKey, keyNotice, loadImage, notUsedReason, openZoom, showProgress, statusLine,
  submitAnswer, withModifier, zoomIsOpen,
} from "./client.js";

const app = $("rich-app");
const setStatus = statusLine($("status"));
const notice = keyNotice($("key-notice"));
const notUsed = () => notice(notUsedReason(app, "image"));
const CENTRE_R = 8; // px: the coloured disc of a point (white ring included)
const HIT_R = 14; // px: a tap or click this close to a point's centre removes the point
const SVG = "http://www.w3.org/2000/svg";
const state = {
  task: null, shownAt: null, busy: true, kind: "artifact",
  points: [], words: new Set(), scores: {}, history: [], focus: 0,
};

// Points ----------------------------------------------------------------------------------------------

function setKind(kind) {
  state.kind = kind;
  app.querySelectorAll(".kind-button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.kind === kind)));
}

function fit() {
  fitImage($("rich-img"), $("rich-canvas").parentElement.clientWidth);
}

function circle(cls, cx, cy, r) {
  const c = document.createElementNS(SVG, "circle");
  c.setAttribute("class", cls);
  c.setAttribute("cx", cx);
  c.setAttribute("cy", cy);
  c.setAttribute("r", r);
  return c;
}

function drawPoints() {
  const img = $("rich-img");
  const svg = $("rich-overlay");
  const w = img.clientWidth;
  const h = img.clientHeight;
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const r = (state.task?.assignment.effective_radius || 0.05) * h;
  state.points.forEach((p, i) => {
    const g = document.createElementNS(SVG, "g");
    g.setAttribute("class", `point ${p.kind}`);
    const [cx, cy] = [p.x * w, p.y * h];
    // Dark under-strokes keep the coloured outline and disc visible on light and on busy images; the white
    // ring keeps them visible on dark ones.
    const hit = circle("hit", cx, cy, HIT_R);
    hit.dataset.index = String(i);
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${p.kind} point (click or tap to remove)`;
    hit.append(title);
    g.append(circle("disk-edge", cx, cy, r), circle("disk", cx, cy, r), circle("halo", cx, cy, CENTRE_R + 2),
             circle("centre", cx, cy, CENTRE_R), hit);
    svg.append(g);
  });
  const n = (k) => state.points.filter((p) => p.kind === k).length;
  $("point-count").textContent = `${n("artifact")} artifact · ${n("misalignment")} misalignment`;
}

function onPointer(event) {
  if (event.button > 0) return;
  if (state.busy || !state.task) { notUsed(); return; }
  event.preventDefault();
  const target = event.target;
  if (target.dataset && target.dataset.index !== undefined) {
    const index = Number(target.dataset.index);
    const [removed] = state.points.splice(index, 1);
    state.history.push({ type: "remove", point: removed, index });
  } else {
    const rect = $("rich-overlay").getBoundingClientRect();
    if (!rect.width || !rect.height) return;
    const clamp = (v) => Math.min(1, Math.max(0, v));
    const point = {
      x: clamp((event.clientX - rect.left) / rect.width),
      y: clamp((event.clientY - rect.top) / rect.height),
      kind: state.kind,
    };
    state.points.push(point);
    state.history.push({ type: "add", point });
  }
  drawPoints();
}

function undo() {
  const last = state.history.pop();
  if (!last) return;
  if (last.type === "add") {
    const i = state.points.lastIndexOf(last.point);
    if (i >= 0) state.points.splice(i, 1);
  } else if (last.type === "remove") {
    state.points.splice(last.index, 0, last.point);
  } else if (last.type === "word") {
    toggleWord(last.index, false);
  }
  drawPoints();
}

// Words -----------------------------------------------------------------------------------------------

function toggleWord(index, record = true) {
  if (state.words.has(index)) state.words.delete(index); else state.words.add(index);
  const button = $("prompt-words").querySelector(`[data-index="${index}"]`);
  if (button) button.setAttribute("aria-pressed", String(state.words.has(index)));
  if (record) state.history.push({ type: "word", index });
}

function renderWords(tokens) {
  const box = $("prompt-words");
  box.replaceChildren();
  tokens.forEach((word, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "word";
    b.dataset.index = String(i);
    b.setAttribute("aria-pressed", "false");
    b.textContent = word; // prompts are user text: never innerHTML
    b.addEventListener("click", () => { if (state.busy) notUsed(); else toggleWord(i); });
    box.append(b);
  });
}

// Scores ----------------------------------------------------------------------------------------------

function dims() { return state.task ? state.task.assignment.dimensions : []; }

function renderScores(dimensions) {
  const box = $("scores");
  box.replaceChildren();
  $("dim-keys").replaceChildren(...dimensions.flatMap((d, i) => {
    const k = document.createElement("kbd");
    k.textContent = d.key.toUpperCase();
    return i ? [document.createTextNode(" "), k] : [k];
  }));
  dimensions.forEach((d, i) => {
    const row = document.createElement("div");
    row.className = "likert";
    row.tabIndex = 0;
    row.dataset.dim = d.name;
    row.addEventListener("focus", () => { state.focus = i; markFocus(); });
    const head = document.createElement("div");
    head.className = "likert-head";
    const label = document.createElement("strong");
    label.textContent = d.label;
    const key = document.createElement("kbd");
    key.textContent = d.key.toUpperCase();
    head.append(label, document.createTextNode(" "), key);
    const options = document.createElement("div");
    options.className = "likert-options";
    for (let s = 1; s <= 5; s++) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = String(s);
      b.dataset.score = String(s);
      b.tabIndex = -1;
      b.setAttribute("aria-pressed", "false");
      b.addEventListener("click", () => { setScore(i, s); row.focus(); });
      options.append(b);
    }
    const anchors = document.createElement("div");
    anchors.className = "likert-anchors small muted";
    const low = document.createElement("span");
    low.textContent = `1 = ${d.low}`;
    const high = document.createElement("span");
    high.textContent = `5 = ${d.high}`;
    anchors.append(low, high);
    row.append(head, options, anchors);
    box.append(row);
  });
}

function rows() { return [...$("scores").querySelectorAll(".likert")]; }

function markFocus() {
  rows().forEach((r, i) => r.classList.toggle("focused", i === state.focus));
}

function focusDim(i) {
  const all = rows();
  if (!all.length) return;
  state.focus = (i + all.length) % all.length;
  all[state.focus].focus();
  markFocus();
}

function setScore(i, score) {
  const d = dims()[i];
  if (state.busy) { notUsed(); return; }
  if (!d) return;
  state.scores[d.name] = score;
  const row = rows()[i];
  row.classList.remove("missing");
  if (dims().every((x) => state.scores[x.name])) setStatus("");
  row.querySelectorAll("button[data-score]").forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.score) === score)));
}

// Flow ------------------------------------------------------------------------------------------------

async function next(given = null, afterAnswer = false) {
  state.busy = true;
  app.dataset.state = "loading";
  state.task = null;
  setStatus("Loading the next image…");
  const data = await fetchNextTask(app, "rich", setStatus, given);
  if (!data) { app.dataset.state = "error"; return; }
  const a = data.assignment;
  showProgress(data.progress);
  Object.assign(state, { points: [], words: new Set(), scores: {}, history: [], focus: 0 });
  renderWords(a.tokens);
  renderScores(a.dimensions);
  try {
    await loadImage($("rich-img"), a.image.url);
  } catch (err) {
    app.dataset.state = "error";
    setStatus(`${err.message}; reload the page to try again.`, "error");
    return;
  }
  state.task = data;
  fit();
  drawPoints();
  state.shownAt = performance.now();
  state.busy = false;
  setStatus("");
  app.dataset.state = "ready";
  if (afterAnswer) showNextImage();
}

// After an answer: when the new image's top is off screen (on a phone the scores and the submit button
// are below the image), scroll the task's top (progress, prompt, image) into view.
function showNextImage() {
  const top = $("rich-canvas").getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight - 120) app.scrollIntoView({ block: "start" });
}

async function submit() {
  if (state.busy || !state.task) { notUsed(); return; }
  const missing = dims().filter((d) => !state.scores[d.name]);
  if (missing.length) {
    rows().forEach((r) => r.classList.toggle("missing", !state.scores[r.dataset.dim]));
    setStatus(`Please set every score before submitting: ${missing.map((d) => d.label).join(", ")}.`, "error");
    focusDim(dims().indexOf(missing[0]));
    return;
  }
  state.busy = true;
  app.dataset.state = "saving";
  notice("");
  const a = state.task.assignment;
  setStatus("Saving…");
  const { outcome, next: following } = await submitAnswer(app, a.id, {
    instruction_version: state.task.instruction_version,
    points: state.points.map((p) => ({ x: p.x, y: p.y, kind: p.kind })),
    misaligned_words: [...state.words].sort((x, y) => x - y),
    scores: state.scores,
    response_time_ms: Math.round(performance.now() - state.shownAt),
  }, setStatus);
  if (outcome === "navigating") return;
  if (outcome === "refused") {
    state.busy = false;
    app.dataset.state = "ready";
    return;
  }
  await next(following, true);
}

function zoom() {
  if (app.dataset.state === "loading") { notUsed(); return; } // the previous image is still shown
  openZoom([{ img: $("rich-img"), label: "The image" }]);
}

document.addEventListener("keydown", (event) => {
  if (zoomIsOpen()) return;
  if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "z") {
    event.preventDefault();
    if (state.busy) notUsed(); else undo();
    return;
  }
  if (withModifier(event)) return;
  const key = event.key.toLowerCase();
  if (key === "z") { event.preventDefault(); zoom(); return; }
  if (state.busy) { if (isShortcutKey(event)) notUsed(); return; }
  if (key === "a" || key === "m") { setKind(key === "a" ? "artifact" : "misalignment"); event.preventDefault(); return; }
  if (event.key === "Enter") { event.preventDefault(); submit(); return; }
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    focusDim(state.focus + (event.key === "ArrowDown" ? 1 : -1));
    return;
  }
  if (/^[1-5]$/.test(event.key)) {
    event.preventDefault();
    const i = state.focus;
    setScore(i, Number(event.key));
    if (i + 1 < dims().length) focusDim(i + 1);
    return;
  }
  const dimIndex = dims().findIndex((d) => d.key === key);
  if (dimIndex >= 0) { event.preventDefault(); focusDim(dimIndex); }
});

app.querySelectorAll(".kind-button").forEach((b) => b.addEventListener("click", () => setKind(b.dataset.kind)));
$("undo").addEventListener("click", () => { if (state.busy) notUsed(); else undo(); });
$("rich-zoom").addEventListener("click", zoom);
$("rich-submit").addEventListener("click", submit);
// Mouse and pen mark on press; a finger marks on a tap (lifted where it touched down), so that a swipe
// across the image still scrolls the page on a phone.
let touch = null;
$("rich-overlay").addEventListener("pointerdown", (event) => {
  if (event.pointerType !== "touch") { onPointer(event); return; }
  touch = { id: event.pointerId, x: event.clientX, y: event.clientY };
});
$("rich-overlay").addEventListener("pointerup", (event) => {
  if (event.pointerType !== "touch" || !touch || touch.id !== event.pointerId) return;
  const moved = Math.hypot(event.clientX - touch.x, event.clientY - touch.y);
  touch = null;
  if (moved <= 10) onPointer(event);
});
$("rich-overlay").addEventListener("pointercancel", () => { touch = null; });
new ResizeObserver(() => drawPoints()).observe($("rich-img"));
new ResizeObserver(fit).observe($("rich-canvas").parentElement);
window.addEventListener("resize", fit);
next();
