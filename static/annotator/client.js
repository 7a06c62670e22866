// PrefLab rater pages' shared module: JSON calls with CSRF, retries and idempotency keys, the next-task
// and submit flow, and the page helpers every rater page uses (status line, progress bar, images, keys).
// Each page script (pairwise.js, rich.js, checklist.js) imports from here and keeps only its own task.

export const byId = (id) => document.getElementById(id);

// A setter for a status line: ``set(text, kind)`` shows text, with ``kind`` (e.g. "error") added to the
// element's own classes.
export function statusLine(el) {
  const base = el.className;
  return (text, kind = "") => {
    el.textContent = text;
    el.className = [base, kind].filter(Boolean).join(" ");
  };
}

// The progress bar and its "n of m done" text (#progress-fill, #progress-text).
export function showProgress(p) {
  const pct = p.total ? Math.round((100 * p.done) / p.total) : 0;
  byId("progress-fill").style.width = `${pct}%`;
  byId("progress-text").textContent = `${p.done} of ${p.total} done`;
}

export function loadImage(img, src) {
  return new Promise((resolve, reject) => {
    img.onload = resolve;
    img.onerror = () => reject(new Error("image failed to load"));
    img.src = src;
  });
}

// Size ``img`` (loaded) to ``width`` CSS px and ``heightShare`` of the window's height (at least 240 px),
// keeping its aspect ratio and scaling small images up: the whole image, as large as the page allows.
export function fitImage(img, width, heightShare = 0.7) {
  if (!img.naturalWidth || !img.naturalHeight || !(width > 0)) return;
  const scale = Math.min(width / img.naturalWidth, Math.max(240, heightShare * window.innerHeight) / img.naturalHeight);
  img.style.width = `${Math.floor(img.naturalWidth * scale)}px`;
  img.style.height = `${Math.floor(img.naturalHeight * scale)}px`;
}

// Keys pressed with Alt, Ctrl or Meta belong to the browser, not to the page's shortcuts.
export const withModifier = (event) => event.altKey || event.ctrlKey || event.metaKey;

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export async function getJSON(url) {
  const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(body?.error?.message || res.statusText), { status: res.status, body });
  return body;
}

// POST a JSON body; retries network failures and 5xx with the same body (and so the same
// idempotency key): the server stores the answer once however often it arrives.
export async function postJSON(url, payload, { attempts = 5 } = {}) {
  let delay = 400;
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(payload),
      });
      const body = await res.json().catch(() => ({}));
      if (res.ok) return body;
      if (res.status < 500 && res.status !== 429) {
        throw Object.assign(new Error(body?.error?.message || res.statusText), { status: res.status, body, final: true });
      }
      if (i + 1 >= attempts) throw Object.assign(new Error(body?.error?.message || res.statusText), { status: res.status, body });
    } catch (err) {
      if (err.final || i + 1 >= attempts) throw err;
    }
    await new Promise((r) => setTimeout(r, delay));
    delay *= 2;
  }
}

// Remember the idempotency key of an unanswered assignment across reloads.
export function keyFor(assignmentId) {
  const name = `preflab-key-${assignmentId}`;
  let key = sessionStorage.getItem(name);
  if (!key) { key = newKey(); sessionStorage.setItem(name, key); }
  return key;
}

export function forgetKey(assignmentId) {
  sessionStorage.removeItem(`preflab-key-${assignmentId}`);
}

// Submit a rater's answer to an assignment (to the page's data-submit-url), exactly once however often it
// is retried. Returns {outcome, next}: outcome "saved" (stored now or before; ``next`` is the following task
// when the server sent it), "navigating" (the instructions changed: the rater is sent to read them), or
// "refused" (setStatus shows the reason; nothing was stored).
export async function submitAnswer(app, assignmentId, body, setStatus) {
  let reply = null;
  try {
    reply = await postJSON(app.dataset.submitUrl, { assignment: assignmentId, idempotency_key: keyFor(assignmentId), ...body });
  } catch (err) {
    const code = err.body?.error?.code;
    if (code === "instructions_changed") { window.location.assign(app.dataset.instructionsUrl); return { outcome: "navigating" }; }
    if (code !== "already_answered") { setStatus(`Not saved: ${err.message}`, "error"); return { outcome: "refused" }; }
  }
  forgetKey(assignmentId);
  return { outcome: "saved", next: reply?.next || null };
}

// The rater's next task of this page's kind, or null when the page is leaving (finished, instructions
// to read, or a task of another kind) or the request failed (setStatus got the reason). ``given`` is a
// next-task payload the server already sent (with the answer's acknowledgement), saving a request.
export async function fetchNextTask(app, kind, setStatus, given = null) {
  let data = given;
  if (!data) {
    try {
      data = await getJSON(app.dataset.nextUrl);
    } catch (err) {
      setStatus(`Could not load the next task: ${err.message}. Reload the page to try again.`, "error");
      return null;
    }
  }
  if (data.status === "done") { window.location.assign(app.dataset.doneUrl); return null; }
  if (data.status === "blocked") { window.location.assign(app.dataset.instructionsUrl); return null; }
  if (data.assignment.kind !== kind && app.dataset.taskUrl) { window.location.assign(app.dataset.taskUrl); return null; }
  return data;
}

// --- keys and taps that come while the page is busy --------------------------------------------------

// A key the rater pages use as a shortcut (a letter, a digit, Enter or an arrow), pressed without Alt,
// Ctrl or Meta. Space and Tab are left to the browser (they toggle and move focus).
export const isShortcutKey = (event) => !withModifier(event)
  && ((event.key.length === 1 && event.key !== " ") || ["Enter", "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(event.key));

// A notice for a key press or tap that came while the page was saving an answer or loading the next task.
// Nothing is applied blind (to a task the rater has not seen yet), and nothing is dropped silently either:
// ``say(text)`` shows the reason in #key-notice (a toast that covers nothing the rater must tap) for a few
// seconds; ``say("")`` hides it at once.
export function keyNotice(el, { showForMs = 4000 } = {}) {
  let timer = null;
  return (text) => {
    clearTimeout(timer);
    el.textContent = text;
    if (text) timer = setTimeout(() => { el.textContent = ""; }, showForMs);
  };
}

// The reason an input was not used, for a page whose #...-app element has data-state loading / saving.
export function notUsedReason(app, noun) {
  if (app.dataset.state === "saving") return "Your answer is still being saved — that was not used.";
  if (app.dataset.state === "loading") return `Wait for the next ${noun} — your key or tap was not used.`;
  return "";
}

// --- images at full size ----------------------------------------------------------------------------

// One <dialog> shared by the page: an image at its natural size (1 image pixel = 1 CSS pixel), scrollable,
// over the whole window. Esc, Z, a click or the close button shut it; with several images, ← → switch
// between them. Keys pressed while it is open never reach the page's own shortcuts, so zooming never
// answers a task.
let zoom = null;

function zoomDialog() {
  if (zoom) return zoom;
  const dialog = document.createElement("dialog");
  dialog.className = "zoom";
  dialog.id = "zoom";
  dialog.setAttribute("aria-label", "Image at full size");
  const bar = document.createElement("div");
  bar.className = "zoom-bar";
  const caption = document.createElement("span");
  caption.className = "zoom-caption";
  const close = document.createElement("button");
  close.type = "button";
  close.className = "zoom-close";
  close.textContent = "✕ Close";
  bar.append(caption, close);
  const stage = document.createElement("div");
  stage.className = "zoom-stage";
  const img = document.createElement("img");
  img.id = "zoom-img";
  img.draggable = false;
  stage.append(img);
  dialog.append(bar, stage);
  document.body.append(dialog);
  zoom = { dialog, caption, img, images: [], index: 0 };
  dialog.tabIndex = -1; // focused when open, so that ↑ ↓ PgUp PgDn scroll the image
  dialog.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    if (dialog.contains(document.activeElement)) document.activeElement.blur(); // keys go back to the page
  });
  // Capture on window: whatever has the focus, a key pressed while the zoom is open is the zoom's alone.
  window.addEventListener("keydown", (event) => {
    if (!dialog.open) return;
    event.stopPropagation();
    if (withModifier(event)) return;
    const k = event.key;
    if (k === "z" || k === "Z") { event.preventDefault(); dialog.close(); return; }
    if ((k === "ArrowLeft" || k === "ArrowRight") && zoom.images.length > 1) {
      event.preventDefault();
      showZoomed(zoom.index + (k === "ArrowLeft" ? -1 : 1));
    }
  }, true);
  return zoom;
}

function showZoomed(index) {
  const z = zoom;
  z.index = Math.max(0, Math.min(index, z.images.length - 1));
  const { img: source, label } = z.images[z.index];
  z.img.src = source.currentSrc || source.src;
  z.img.alt = `${label} at full size`;
  const size = source.naturalWidth ? ` · ${source.naturalWidth} × ${source.naturalHeight} px` : "";
  const switcher = z.images.length > 1 ? " · ← → other image" : "";
  z.caption.textContent = `${label}${size}${switcher} · Esc or click to close`;
  z.dialog.scrollTo(0, 0);
}

// Open the zoom on ``images`` ([{img, label}], the page's <img> elements), showing ``index`` first.
// Returns false (and opens nothing) when that image has not loaded.
export function openZoom(images, index = 0) {
  const shown = images[index]?.img;
  if (!shown || !shown.complete || !shown.naturalWidth) return false;
  const z = zoomDialog();
  z.images = images;
  showZoomed(index);
  if (!z.dialog.open) z.dialog.showModal();
  z.dialog.focus();
  return true;
}

export const zoomIsOpen = () => Boolean(zoom && zoom.dialog.open);
