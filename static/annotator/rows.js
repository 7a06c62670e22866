// Editable rows on the settings page (Django formsets with ORDER and DELETE): add a row, move a row up
// or down, mark a row removed. Without this script the same form works: type positions, tick "Remove",
// and fill the blank row at the end (with it, the "Add" button makes rows instead of that blank row).
for (const editor of document.querySelectorAll("[data-rows-editor]")) {
  const prefix = editor.dataset.prefix;
  const total = editor.querySelector(`#id_${prefix}-TOTAL_FORMS`);
  const max = Number(editor.querySelector(`#id_${prefix}-MAX_NUM_FORMS`)?.value || 1000);
  const body = editor.querySelector("[data-rows]");
  const template = editor.querySelector("template[data-row-template]");
  const addButton = editor.closest("form")?.querySelector(`[data-add-row="${prefix}"]`);
  const live = document.createElement("p");
  live.className = "sr-only";
  live.setAttribute("aria-live", "polite");
  editor.append(live);

  const rows = () => [...body.querySelectorAll("tr[data-row]")];
  const renumber = () => rows().forEach((row, i) => {
    const order = row.querySelector('input[name$="-ORDER"]');
    if (order) order.value = i + 1;
  });
  const initial = Number(editor.querySelector(`#id_${prefix}-INITIAL_FORMS`)?.value || 0);
  const empty = editor.querySelector("[data-rows-empty]");
  const updateAdd = () => {
    if (addButton) addButton.disabled = rows().length >= max;
    if (empty) empty.hidden = rows().length > 0;
    editor.querySelector("table").hidden = rows().length === 0;
  };
  const isBlank = (row) => [...row.querySelectorAll('input[type=text], input[type=number], textarea')]
    .filter((input) => !input.name.endsWith("-ORDER")).every((input) => input.value.trim() === "");

  // The blank rows the page adds for typing without this script: the "Add" button replaces them.
  if (addButton) {
    const all = rows();
    while (all.length > initial && isBlank(all.at(-1))) {
      all.pop().remove();
    }
    total.value = String(all.length);
  }

  body.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-move]");
    if (!button) return;
    const row = button.closest("tr");
    const up = Number(button.dataset.move) < 0;
    const sibling = up ? row.previousElementSibling : row.nextElementSibling;
    if (!sibling) { live.textContent = up ? "Already the first row." : "Already the last row."; return; }
    body.insertBefore(up ? row : sibling, up ? sibling : row);
    renumber();
    button.focus();
    live.textContent = `Moved to position ${rows().indexOf(row) + 1} of ${rows().length}.`;
  });

  body.addEventListener("change", (event) => {
    if (event.target.name?.endsWith("-DELETE")) {
      event.target.closest("tr").classList.toggle("deleted", event.target.checked);
      live.textContent = event.target.checked ? "Row marked for removal; it is deleted when you save."
        : "Row kept.";
    }
  });

  addButton?.addEventListener("click", () => {
    const index = Number(total.value);
    body.insertAdjacentHTML("beforeend", template.innerHTML.replaceAll("__prefix__", String(index)));
    total.value = String(index + 1);
    renumber();
    updateAdd();
    const row = rows().at(-1);
    row.querySelector('input:not([type=hidden]):not([name$="-ORDER"])')?.focus();
    live.textContent = `Row ${rows().length} added.`;
  });
  updateAdd();
}
