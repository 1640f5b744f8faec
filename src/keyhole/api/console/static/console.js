// Shared behaviour of the console's pages. Every page works without it; it only adds comfort.
//  - button[data-copy="ID"] copies the text of the element with that id.
//  - [data-poll="URL"] is replaced by the HTML fragment at URL every second (same origin, with
//    the session cookie) until the fragment it gets carries no data-poll attribute itself. An
//    answer that is no fragment (a redirect once the session has ended, a 4xx such as the 410 of
//    expired results) reloads the page, which then shows the sign-in or the error in full.
"use strict";

function copyButtons(root) {
  for (const button of root.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.textContent);
        button.textContent = "Copied";
      } catch (error) {
        button.textContent = "Select and copy";
      }
    });
  }
}

function poll(element) {
  const url = element.dataset.poll;
  const every = Number(element.dataset.pollEvery || 1000);
  window.setTimeout(async () => {
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    } catch (error) {
      poll(element);
      return;
    }
    if (response.status >= 500) {
      poll(element); // a passing failure of the server: ask again
      return;
    }
    if (!response.ok || response.redirected) {
      await response.text().catch(() => ""); // read to its end: the reload cuts no request short
      window.location.reload();
      return;
    }
    const holder = document.createElement("div");
    holder.innerHTML = await response.text();
    const fresh = holder.firstElementChild;
    if (!fresh) return;
    element.replaceWith(fresh);
    copyButtons(fresh);
    if (fresh.dataset.poll) poll(fresh);
    else if (fresh.dataset.reload !== undefined) window.location.reload();
  }, every);
}

document.addEventListener("DOMContentLoaded", () => {
  copyButtons(document);
  for (const element of document.querySelectorAll("[data-poll]")) poll(element);
});
