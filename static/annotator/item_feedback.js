// Researcher item page: toggle each heatmap layer, set their opacity, show every rater's raw points.
const layers = [...document.querySelectorAll(".heat-layer")];
const opacity = document.getElementById("heat-opacity");

function apply() {
  const alpha = Number(opacity.value) / 100;
  for (const layer of layers) {
    const toggle = document.querySelector(`.layer-toggle[data-kind="${layer.dataset.kind}"]`);
    layer.style.display = toggle.checked ? "" : "none";
    layer.style.opacity = String(alpha);
  }
}

document.querySelectorAll(".layer-toggle").forEach((t) => t.addEventListener("change", apply));
opacity.addEventListener("input", apply);
document.getElementById("show-raw").addEventListener("change", (e) => {
  document.getElementById("raw-points").hidden = !e.target.checked;
});
apply();
