// Live progress of background jobs (fits, agreement reports): every element with
// data-job-status-url whose data-status is queued or running is polled once a second; its
// .progressbar span and .status follow the job, and the page reloads when the job ends.
const ACTIVE = new Set(["queued", "running"]);

function update(el, job) {
  const bar = el.querySelector(".progressbar span");
  if (bar) bar.style.width = `${Math.round(job.progress * 100)}%`;
  const status = el.querySelector(".status");
  if (status) status.textContent = job.status;
}

async function poll(elements) {
  const still = [];
  for (const el of elements) {
    let job;
    try {
      const res = await fetch(el.dataset.jobStatusUrl, { credentials: "same-origin" });
      if (!res.ok) { still.push(el); continue; }
      job = await res.json();
    } catch {
      still.push(el);
      continue;
    }
    update(el, job);
    if (!ACTIVE.has(job.status)) { location.reload(); return; }
    still.push(el);
  }
  if (still.length) setTimeout(() => poll(still), 1000);
}

const watched = [...document.querySelectorAll("[data-job-status-url]")].filter(
  (el) => ACTIVE.has(el.dataset.status));
if (watched.length) poll(watched);
