// Rank page: k images (3–10) to put in order, best first (left) to worst (right).
// Pointer (mouse, touch, pen): drag an image to its place; or click it and use its ◀ ▶ = buttons.
// Keys: 1–9 (0 for the 10th) select the image in that slot; ← → move it one place; = ties it with the
// image(s) before it (again: unties it), only where the project allows ties; Enter submits.
// The ranking is sent as groups of item ids, best first ([[7], [3, 9], [4]]: 3 and 9 tied second).
// Z (or an image's ⤢ button) shows the selected image at full size (← → the others; Esc closes).
// A key or tap while an answer is saved or the next images load is not used, and the page says so.
import {
  byId as $, fetchNextTask, isShortcutKey, keyNotice, loadImage, notUsedReason, openZoom, showProgress, statusLine,
  submitAnswer, withModifier, zoomIsOpen,
} from "./client.js";

const app = $("rank-app");
const list = $("rank-list");
const setStatus = statusLine($("status"));
const notice = keyNotice($("key-notice"));
const notUsed = () => notice(notUsedReason(app, "images"));
const state = { task: null, groups: [], items: new Map(), selected: null, shownAt: null, busy: true, allowTie: false };
const DRAG_THRESHOLD_PX = 6;

// --- the ranking as groups of item ids -------------------------------------------------------------

const flat = () => state.groups.flat();
const groupOf = (id) => state.groups.findIndex((g) => g.includes(id));

function take(id) {
  // Remove ``id`` from its group (dropping the group if it empties); return the group index it was in.
  const gi = groupOf(id);
  const group = state.groups[gi];
  group.splice(group.indexOf(id), 1);
  if (!group.length) state.groups.splice(gi, 1);
  return { gi, emptied: !group.length };
}

function move(id, step) {
  const gi = groupOf(id);
  if (gi < 0) return;
  const alone = state.groups[gi].length === 1;
  if (alone && (step < 0 ? gi === 0 : gi === state.groups.length - 1)) return;
  take(id);
  // Tied: leave the tie, just ahead of (←) or just behind (→) its group. Alone: jump over the neighbour group.
  const at = alone ? (step < 0 ? gi - 1 : gi + 1) : (step < 0 ? gi : gi + 1);
  state.groups.splice(at, 0, [id]);
  render();
}

function toggleTie(id) {
  if (!state.allowTie) return;
  const gi = groupOf(id);
  if (gi < 0) return;
  if (state.groups[gi].length > 1) {
    take(id);
    state.groups.splice(gi + 1, 0, [id]); // untied: just behind the images it was tied with
  } else if (gi === 0) {
    setStatus("The first image has nothing before it to tie with.", "error");
    return;
  } else {
    take(id);
    state.groups[gi - 1].push(id);
  }
  setStatus("");
  render();
}

function dropAt(id, targetId, before) {
  if (id === targetId) return;
  take(id);
  const tg = groupOf(targetId);
  state.groups.splice(before ? tg : tg + 1, 0, [id]);
  render();
}

// --- rendering -------------------------------------------------------------------------------------

function ordinal(n) {
  const s = ["th", "st", "nd", "rd"];
  const v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}

function tool(label, text, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.tabIndex = -1;
  b.textContent = text;
  b.setAttribute("aria-label", label);
  b.title = label;
  b.addEventListener("click", (event) => { event.stopPropagation(); select(Number(b.closest("li").dataset.id)); onClick(); });
  return b;
}

function render() {
  const cards = new Map([...list.children].map((li) => [Number(li.dataset.id), li]));
  const order = [];
  let place = 1;
  state.groups.forEach((group) => {
    group.forEach((id, k) => order.push({ id, place, tied: group.length > 1, tiedPrev: k > 0 }));
    place += group.length;
  });
  order.forEach(({ id, place: p, tied, tiedPrev }, slot) => {
    const li = cards.get(id) || makeCard(id);
    li.dataset.slot = String(slot + 1);
    li.classList.toggle("tied-prev", tiedPrev);
    li.classList.toggle("selected", id === state.selected);
    li.setAttribute("aria-selected", String(id === state.selected));
    li.querySelector(".rank-place").innerHTML = "";
    li.querySelector(".rank-place").append(ordinal(p));
    if (tied) {
      const mark = document.createElement("span");
      mark.className = "tie-mark";
      mark.textContent = " =";
      li.querySelector(".rank-place").append(mark);
    }
    li.querySelector("kbd").textContent = slot < 9 ? String(slot + 1) : slot === 9 ? "0" : "";
    li.setAttribute("aria-label", `Image in place ${p}${tied ? " (tied)" : ""}`);
    list.append(li); // re-appending an existing node moves it: the DOM follows the ranking
  });
}

function makeCard(id) {
  const item = state.items.get(id);
  const li = document.createElement("li");
  li.className = "rank-card";
  li.dataset.id = String(id);
  li.tabIndex = 0;
  const head = document.createElement("div");
  head.className = "rank-head";
  const placeEl = document.createElement("span");
  placeEl.className = "rank-place";
  head.append(placeEl, document.createElement("kbd"));
  const img = document.createElement("img");
  img.alt = "image to rank";
  li.append(head, img);
  if (!state.task.assignment.prompt && item.prompt) {
    const p = document.createElement("p");
    p.className = "rank-prompt";
    p.textContent = item.prompt;
    li.append(p);
  }
  const tools = document.createElement("div");
  tools.className = "rank-tools";
  tools.append(tool("Move one place better (left)", "◀", () => move(id, -1)),
               tool("Move one place worse (right)", "▶", () => move(id, +1)));
  if (state.allowTie) tools.append(tool("Tie with the image before it (again: untie)", "=", () => toggleTie(id)));
  tools.append(tool("Show this image at full size", "⤢", () => zoom(id)));
  li.append(tools);
  li.addEventListener("pointerdown", (event) => startDrag(event, li));
  li.addEventListener("focus", () => { if (state.selected !== id) select(id); });
  return li;
}

function select(id) {
  state.selected = id;
  for (const li of list.children) {
    const on = Number(li.dataset.id) === id;
    li.classList.toggle("selected", on);
    li.setAttribute("aria-selected", String(on));
  }
}

// --- pointer drag and drop (mouse, touch and pen alike) ----------------------------------------------

let drag = null;

function startDrag(event, li) {
  if (event.button > 0 || event.target.closest("button")) return;
  if (state.busy) { notUsed(); return; }
  select(Number(li.dataset.id));
  drag = { li, id: Number(li.dataset.id), x0: event.clientX, y0: event.clientY, moving: false, target: null };
  li.setPointerCapture(event.pointerId);
  li.addEventListener("pointermove", onDragMove);
  li.addEventListener("pointerup", endDrag);
  li.addEventListener("pointercancel", endDrag);
}

function clearMarks() {
  for (const li of list.children) li.classList.remove("drop-before", "drop-after");
}

function onDragMove(event) {
  if (!drag) return;
  const dx = event.clientX - drag.x0;
  const dy = event.clientY - drag.y0;
  if (!drag.moving && Math.hypot(dx, dy) < DRAG_THRESHOLD_PX) return;
  drag.moving = true;
  drag.li.classList.add("dragging");
  drag.li.style.transform = `translate(${dx}px, ${dy}px)`;
  // The drop target: the other card whose centre is nearest the pointer; before it if left of its centre.
  let best = null;
  for (const li of list.children) {
    if (li === drag.li) continue;
    const r = li.getBoundingClientRect();
    const cx = r.left + r.width / 2;
    const cy = r.top + r.height / 2;
    const d = Math.hypot(event.clientX - cx, event.clientY - cy);
    if (!best || d < best.d) best = { li, d, before: event.clientX < cx };
  }
  clearMarks();
  drag.target = best;
  if (best) best.li.classList.add(best.before ? "drop-before" : "drop-after");
}

function endDrag(event) {
  if (!drag) return;
  const { li, id, moving, target } = drag;
  drag = null;
  li.removeEventListener("pointermove", onDragMove);
  li.removeEventListener("pointerup", endDrag);
  li.removeEventListener("pointercancel", endDrag);
  if (li.hasPointerCapture(event.pointerId)) li.releasePointerCapture(event.pointerId);
  li.classList.remove("dragging");
  li.style.transform = "";
  clearMarks();
  if (moving && target && event.type === "pointerup") dropAt(id, Number(target.li.dataset.id), target.before);
}

// --- the task ------------------------------------------------------------------------------------

async function next(given = null) {
  state.busy = true;
  app.dataset.state = "loading";
  state.task = null;
  setStatus("Loading the next images…");
  const data = await fetchNextTask(app, "rank", setStatus, given);
  if (!data) { app.dataset.state = "error"; return; }
  const a = data.assignment;
  showProgress(data.progress);
  state.task = data;
  state.allowTie = a.allow_tie === true;
  $("tie-hint").hidden = !state.allowTie;
  $("prompt").textContent = a.prompt || "";
  state.items = new Map(a.items.map((item) => [item.id, item]));
  state.groups = a.items.map((item) => [item.id]); // as shown: the order drawn for this assignment
  state.selected = null;
  list.replaceChildren();
  render();
  try {
    await Promise.all(a.items.map((item) => loadImage(list.querySelector(`li[data-id="${item.id}"] img`), item.image)));
  } catch (err) {
    app.dataset.state = "error";
    setStatus(`${err.message}; reload the page to try again.`, "error");
    return;
  }
  select(a.items[0].id);
  state.shownAt = performance.now();
  state.busy = false;
  setStatus("");
  app.dataset.state = "ready";
}

async function submit() {
  if (state.busy || !state.task) { notUsed(); return; }
  state.busy = true;
  app.dataset.state = "saving";
  notice("");
  setStatus("Saving…");
  const a = state.task.assignment;
  const { outcome, next: following } = await submitAnswer(app, a.id, {
    ranking: state.groups.map((g) => [...g]),
    instruction_version: state.task.instruction_version,
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

// The images at full size, in their current order, starting with ``id``'s.
function zoom(id) {
  if (state.busy || !state.task) { notUsed(); return; }
  const order = flat();
  const images = order.map((itemId, slot) => ({
    img: list.querySelector(`li[data-id="${itemId}"] img`), label: `Image ${slot + 1} of ${order.length}`,
  }));
  openZoom(images, Math.max(0, order.indexOf(id)));
}

document.addEventListener("keydown", (event) => {
  if (zoomIsOpen() || withModifier(event)) return;
  if (state.busy || !state.task) { if (isShortcutKey(event)) notUsed(); return; }
  if (event.key === "z" || event.key === "Z") {
    event.preventDefault();
    zoom(state.selected ?? flat()[0]);
  } else if (/^[0-9]$/.test(event.key)) {
    const slot = event.key === "0" ? 10 : Number(event.key);
    const id = flat()[slot - 1];
    if (id !== undefined) { event.preventDefault(); select(id); }
  } else if ((event.key === "ArrowLeft" || event.key === "ArrowRight") && state.selected !== null) {
    event.preventDefault();
    move(state.selected, event.key === "ArrowLeft" ? -1 : +1);
  } else if (event.key === "=" && state.selected !== null) {
    event.preventDefault();
    toggleTie(state.selected);
  } else if (event.key === "Enter") {
    event.preventDefault(); // not also a click on a focused button
    submit();
  }
});
$("rank-submit").addEventListener("click", submit);
list.addEventListener("click", (event) => {
  const li = event.target.closest("li.rank-card");
  if (li && !state.busy) select(Number(li.dataset.id));
  else if (li) notUsed();
});
next();
