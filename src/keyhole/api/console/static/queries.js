// The SQL editor: Ctrl+Enter (Cmd+Enter on a Mac) runs the query. The form works without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const editor of document.querySelectorAll("textarea[data-run-shortcut]")) {
    editor.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        editor.form.requestSubmit();
      }
    });
  }
});
