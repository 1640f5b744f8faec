// The playground's comfort: Ctrl+Enter (Cmd+Enter on a Mac) in the request form sends it, as
// the Send button does. The form works the same without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("run-form");
  if (!form) return;
  form.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    event.preventDefault();
    form.querySelector('button[value="run"]').click();
  });
});
