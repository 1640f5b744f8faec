// Connection forms: of each choice of an authentication method (a select[data-choice]), only the
// chosen option's fieldset is shown; the others are hidden and disabled, so they are neither
// posted nor checked, and the shown one's [data-required] controls become required. Without this
// script every option's fields are shown and the server reads only the chosen one's.
"use strict";

function showChosen(select) {
  for (const fieldset of document.querySelectorAll("fieldset[data-branch-of]")) {
    if (fieldset.dataset.branchOf !== select.id) continue;
    const chosen = fieldset.dataset.branch === select.value;
    fieldset.hidden = !chosen;
    fieldset.disabled = !chosen;
    for (const control of fieldset.querySelectorAll("[data-required]")) control.required = chosen;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select[data-choice]")) {
    showChosen(select);
    select.addEventListener("change", () => showChosen(select));
  }
});
