// Pairwise comparison page: two images, keys ← → ↓ (↓ only where the project allows ties), response time
// from when both images show. Z (or ⤢, or a click on an image) shows an image at full size; that never
// answers. A key or tap while an answer is saved or the next pair loads is not used, and the page says so.
import {
  byId as $, fetchNextTask, isShortcutKey, keyNotice, loadImage, notUsedReason, openZoom, showProgress, statusLine,
  submitAnswer, withModifier, zoomIsOpen,
} from "./client.js";

const app = $("pairwise-app");
const setStatus = statusLine($("status"));
const notice = keyNotice($("key-notice"));
const state = { task: null, shownAt: null, busy: false, flags: new Set() };
const images = [{ img: $("left-img"), label: "Left image" }, { img: $("right-img"), label: "Right image" }];

function renderFlags(flags) {
  const box = $("flags");
  box.replaceChildren();
  state.flags.clear();
  for (const flag of flags || []) {
    const label = document.createElement("label");
    label.className = "check small";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.addEventListener("change", () => (input.checked ? state.flags.add(flag) : state.flags.delete(flag)));
    label.append(input, document.createTextNode(` ${flag}`));
    box.append(label);
  }
}

async function next(given = null) {
  state.busy = true;
  state.task = null;
  app.dataset.state = "loading";
  setStatus("Loading the next pair…");
  const data = await fetchNextTask(app, "pairwise", setStatus, given);
  if (!data) { app.dataset.state = "error"; return; }
  const a = data.assignment;
  showProgress(data.progress);
  $("check-instruction").textContent = a.instruction || "";  // an attention check's instruction
  $("check-instruction").hidden = !a.instruction;
  const samePrompt = a.prompt_left === a.prompt_right;
  $("prompt").textContent = samePrompt ? a.prompt_left : "";
  $("left-prompt").textContent = samePrompt ? "" : a.prompt_left;
  $("right-prompt").textContent = samePrompt ? "" : a.prompt_right;
  renderFlags(a.flags);
  const allowTie = a.allow_tie !== false;
  $("tie-row").hidden = !allowTie;
  $("tie-hint").hidden = !allowTie;
  try {
    await Promise.all([loadImage($("left-img"), a.left.image), loadImage($("right-img"), a.right.image)]);
  } catch (err) {
    app.dataset.state = "error";
    setStatus(`${err.message}; reload the page to try again.`, "error");
    return;
  }
  state.task = { ...data, assignment: a };
  state.shownAt = performance.now();
  state.busy = false;
  app.dataset.state = "ready";
  setStatus("");
}

async function answer(choice) {
  if (state.busy || !state.task) { notice(notUsedReason(app, "pair")); return; }
  if (choice === "tie" && state.task.assignment.allow_tie === false) return;
  state.busy = true;
  app.dataset.state = "saving";
  notice("");
  const a = state.task.assignment;
  const highlight = choice === "tie" ? null : $(choice);
  if (highlight) highlight.classList.add("picked");
  setStatus("Saving…");
  const { outcome, next: following } = await submitAnswer(app, a.id, {
    choice,
    instruction_version: state.task.instruction_version,
    response_time_ms: Math.round(performance.now() - state.shownAt),
    flags: [...state.flags],
  }, setStatus);
  if (outcome === "navigating") return;
  if (outcome === "refused") {
    if (highlight) highlight.classList.remove("picked");
    state.busy = false;
    app.dataset.state = "ready";
    return;
  }
  if (highlight) highlight.classList.remove("picked");
  await next(following);
}

function zoomOn(index) {
  if (app.dataset.state === "loading") { notice(notUsedReason(app, "pair")); return; } // the old pair is still shown
  openZoom(images, index);
}

document.addEventListener("keydown", (event) => {
  if (zoomIsOpen() || withModifier(event)) return;
  const choice = { ArrowLeft: "left", ArrowRight: "right", ArrowDown: "tie" }[event.key];
  if (choice) { event.preventDefault(); answer(choice); return; }
  if (event.key === "z" || event.key === "Z") { event.preventDefault(); zoomOn(0); return; }
  if (state.busy && isShortcutKey(event)) notice(notUsedReason(app, "pair"));
});
app.querySelectorAll("button[data-choice]").forEach((b) => b.addEventListener("click", () => answer(b.dataset.choice)));
app.querySelectorAll("button[data-zoom]").forEach((b) => b.addEventListener("click", () => zoomOn(Number(b.dataset.zoom))));
images.forEach(({ img }, i) => img.addEventListener("click", () => zoomOn(i)));
next();
