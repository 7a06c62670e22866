// Checklist page: yes/no questions grouped by dimension. Y / N answer the highlighted question and move on.
import { byId as $, fetchNextTask, loadImage, showProgress, statusLine, submitAnswer, withModifier } from "./client.js";

const app = $("checklist-app");
const setStatus = statusLine($("status"));
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
  if (!q || state.busy) return;
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
  setStatus("Loading…");
  const data = await fetchNextTask(app, "checklist", setStatus, given);
  if (!data) return;
  const a = data.assignment;
  // Group the questions by dimension (in order of first appearance), keeping their order within a group.
  const order = [...new Set(a.checklist.map((q) => q.dimension))];
  a.checklist = order.flatMap((d) => a.checklist.filter((q) => q.dimension === d));
  showProgress(data.progress);
  $("prompt").textContent = a.prompt;
  state.answers = {};
  state.task = data;
  render(a.checklist);
  await loadImage($("checklist-img"), a.image.url).catch(() => {}); // a broken image still shows the questions
  state.shownAt = performance.now();
  state.busy = false;
  setStatus("");
  app.dataset.state = "ready";
  focusQuestion(0);
}

async function submit() {
  if (state.busy || !state.task) return;
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
    return;
  }
  await next(following);
}

document.addEventListener("keydown", (event) => {
  if (withModifier(event) || state.busy) return;
  const key = event.key.toLowerCase();
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
next();
