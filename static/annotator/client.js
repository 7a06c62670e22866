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
