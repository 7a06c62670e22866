// A round's page while a result is being computed: poll the round's status once a second and reload
// when the pending result has finished (or new rankings have arrived).
const box = document.getElementById("round-status");

async function poll() {
  try {
    const res = await fetch(box.dataset.statusUrl, { credentials: "same-origin" });
    if (res.ok) {
      const state = await res.json();
      if (!state.pending) { location.reload(); return; }
      document.getElementById("n-rankings").textContent = String(state.n_rankings);
    }
  } catch {
    // the network hiccuped: try again
  }
  setTimeout(poll, 1000);
}

if (box && box.dataset.pending) setTimeout(poll, 1000);
