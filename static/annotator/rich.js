// Rich feedback page (RichHF-18K protocol): points of two kinds on the image, misaligned prompt words,
// Likert 1–5 scores. Points are kept in image coordinates normalised to [0, 1]; each is drawn as a disk of
// radius effective_radius × displayed image height in an SVG overlay sized to the displayed image.
import { byId as $, fetchNextTask, loadImage, showProgress, statusLine, submitAnswer, withModifier } from "./client.js";

const app = $("rich-app");
const setStatus = statusLine($("status"));
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
    const disk = document.createElementNS(SVG, "circle");
    disk.setAttribute("class", "disk");
    disk.setAttribute("cx", p.x * w);
    disk.setAttribute("cy", p.y * h);
    disk.setAttribute("r", r);
    const centre = document.createElementNS(SVG, "circle");
    centre.setAttribute("class", "centre");
    centre.setAttribute("cx", p.x * w);
    centre.setAttribute("cy", p.y * h);
    centre.setAttribute("r", 7);
    centre.dataset.index = String(i);
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${p.kind} point (click to remove)`;
    centre.append(title);
    g.append(disk, centre);
    svg.append(g);
  });
  const n = (k) => state.points.filter((p) => p.kind === k).length;
  $("point-count").textContent = `${n("artifact")} artifact · ${n("misalignment")} misalignment`;
}

function onPointer(event) {
  if (state.busy || !state.task || event.button > 0) return;
  event.preventDefault();
  const target = event.target;
  if (target.classList && target.classList.contains("centre")) {
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
    b.addEventListener("click", () => { if (!state.busy) toggleWord(i); });
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
  if (!d || state.busy) return;
  state.scores[d.name] = score;
  const row = rows()[i];
  row.classList.remove("missing");
  if (dims().every((x) => state.scores[x.name])) setStatus("");
  row.querySelectorAll("button[data-score]").forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.score) === score)));
}

// Flow ------------------------------------------------------------------------------------------------

async function next(given = null) {
  state.busy = true;
  app.dataset.state = "loading";
  state.task = null;
  setStatus("Loading…");
  const data = await fetchNextTask(app, "rich", setStatus, given);
  if (!data) return;
  const a = data.assignment;
  showProgress(data.progress);
  Object.assign(state, { points: [], words: new Set(), scores: {}, history: [], focus: 0 });
  renderWords(a.tokens);
  renderScores(a.dimensions);
  try {
    await loadImage($("rich-img"), a.image.url);
  } catch (err) {
    setStatus(`${err.message}; reload the page to try again.`, "error");
    return;
  }
  state.task = data;
  drawPoints();
  state.shownAt = performance.now();
  state.busy = false;
  setStatus("");
  app.dataset.state = "ready";
}

async function submit() {
  if (state.busy || !state.task) return;
  const missing = dims().filter((d) => !state.scores[d.name]);
  if (missing.length) {
    rows().forEach((r) => r.classList.toggle("missing", !state.scores[r.dataset.dim]));
    setStatus(`Please set every score before submitting: ${missing.map((d) => d.label).join(", ")}.`, "error");
    focusDim(dims().indexOf(missing[0]));
    return;
  }
  state.busy = true;
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
    return;
  }
  await next(following);
}

document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "z") {
    event.preventDefault();
    if (!state.busy) undo();
    return;
  }
  if (withModifier(event) || state.busy) return;
  const key = event.key.toLowerCase();
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
$("undo").addEventListener("click", () => { if (!state.busy) undo(); });
$("rich-submit").addEventListener("click", submit);
$("rich-overlay").addEventListener("pointerdown", onPointer);
new ResizeObserver(() => drawPoints()).observe($("rich-img"));
next();
