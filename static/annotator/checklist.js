// Checklist page: yes/no questions grouped by dimension. Y / N answer the highlighted question and move on.
// Z (or ⤢, or a click on the image) shows the image at full size. A key or tap while an answer is saved or
// the next image loads is not used, and the page says so.
import {
  byId as $, fetchNextTask, fitImage, isShortcutKey, keyNotice, loadImage, notUsedReason, openZoom, showProgress,
  statusLine, submitAnswer, withModifier, zoomIsOpen,
} from "./client.js";

const app = $("checklist-app");
const setStatus = statusLine($("status"));
const notice = keyNotice($("key-notice"));
const notUsed = () => notice(notUsedReason(app, "image"));
const img = $("checklist-img");
const fit = () => fitImage(img, img.parentElement.parentElement.clientWidth);
const state = { task: null, shownAt: null, busy: true, answers: {}, focus: 0 };

function questions() { return state.task ? state.task.assignment.checklist : []; }
function rows() { return [...$("questions").querySelectorAll(".check-question")]; }

function focusQuestion(i) {
  const all = rows();
  if (!all.length) return;
  state.focus = Math.max(0, Math.min(i, all.length - 1));
  all[state.focus].focus();
  all.forEach((r, k) => r.classList.toggle("focused", k === state.focus));
}

function answer(i, value) {
  const q = questions()[i];
  if (state.busy) { notUsed(); return; }
  if (!q) return;
  state.answers[q.id] = value;
  const row = rows()[i];
  row.classList.remove("missing");
  if (questions().every((x) => !x.required || x.id in state.answers)) setStatus("");
  row.querySelectorAll("button[data-answer]").forEach((b) => b.setAttribute("aria-pressed", String((b.dataset.answer === "yes") === value)));
}

function render(list) {
  const box = $("questions");
  box.replaceChildren();
  let group = null;
  list.forEach((q, i) => {
    if (!group || group.dataset.dimension !== q.dimension) {
      group = document.createElement("fieldset");
      group.className = "check-group";
      group.dataset.dimension = q.dimension;
      const legend = document.createElement("legend");
      legend.textContent = q.dimension;
      group.append(legend);
      box.append(group);
    }
    const row = document.createElement("div");
    row.className = "check-question";
    row.tabIndex = 0;
    row.dataset.id = q.id;
    row.addEventListener("focus", () => { state.focus = i; rows().forEach((r, k) => r.classList.toggle("focused", k === i)); });
    const text = document.createElement("span");
    text.textContent = q.question + (q.required ? "" : " (optional)");
    const buttons = document.createElement("span");
    buttons.className = "yes-no";
    for (const [label, value] of [["Yes", true], ["No", false]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.tabIndex = -1;
      b.dataset.answer = value ? "yes" : "no";
      b.setAttribute("aria-pressed", "false");
      b.textContent = label;
      b.addEventListener("click", () => { answer(i, value); focusQuestion(i + 1); });
      buttons.append(b);
    }
    row.append(text, buttons);
    group.append(row);
  });
}

async function next(given = null) {
  state.busy = true;
  app.dataset.state = "loading";
  state.task = null;
  setStatus("Loading the next image…");
  const data = await fetchNextTask(app, "checklist", setStatus, given);
  if (!data) { app.dataset.state = "error"; return; }
  const a = data.assignment;
  // Group the questions by dimension (in order of first appearance), keeping their order within a group.
  const order = [...new Set(a.checklist.map((q) => q.dimension))];
  a.checklist = order.flatMap((d) => a.checklist.filter((q) => q.dimension === d));
  showProgress(data.progress);
  $("prompt").textContent = a.prompt;
  state.answers = {};
  state.task = data;
  render(a.checklist);
  await loadImage(img, a.image.url).catch(() => {}); // a broken image still shows the questions
  fit();
  state.shownAt = performance.now();
  state.busy = false;
  setStatus("");
  app.dataset.state = "ready";
  focusQuestion(0);
}

async function submit() {
  if (state.busy || !state.task) { notUsed(); return; }
  const missing = questions().filter((q) => q.required && !(q.id in state.answers));
  if (missing.length) {
    rows().forEach((r) => {
      const q = questions().find((x) => x.id === r.dataset.id);
      r.classList.toggle("missing", q.required && !(q.id in state.answers));
    });
    setStatus(`Please answer every question (${missing.length} left).`, "error");
    focusQuestion(questions().indexOf(missing[0]));
    return;
  }
  state.busy = true;
  app.dataset.state = "saving";
  notice("");
  const a = state.task.assignment;
  setStatus("Saving…");
  const { outcome, next: following } = await submitAnswer(app, a.id, {
    instruction_version: state.task.instruction_version,
    checklist: state.answers,
    response_time_ms: Math.round(performance.now() - state.shownAt),
  }, setStatus);
  if (outcome === "navigating") return;
  if (outcome === "refused") {
    state.busy = false;
    app.dataset.state = "ready";
    return;
  }
  await next(following);
}

function zoom() {
  if (app.dataset.state === "loading") { notUsed(); return; } // the previous image is still shown
  openZoom([{ img, label: "The image" }]);
}

document.addEventListener("keydown", (event) => {
  if (zoomIsOpen() || withModifier(event)) return;
  const key = event.key.toLowerCase();
  if (key === "z") { event.preventDefault(); zoom(); return; }
  if (state.busy) { if (isShortcutKey(event)) notUsed(); return; }
  if (key === "y" || key === "n") {
    event.preventDefault();
    answer(state.focus, key === "y");
    focusQuestion(state.focus + 1);
  } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    focusQuestion(state.focus + (event.key === "ArrowDown" ? 1 : -1));
  } else if (event.key === "Enter") {
    event.preventDefault();
    submit();
  }
});
$("checklist-submit").addEventListener("click", submit);
$("checklist-zoom").addEventListener("click", zoom);
img.addEventListener("click", zoom);
new ResizeObserver(fit).observe(img.parentElement.parentElement);
window.addEventListener("resize", fit);
next();
