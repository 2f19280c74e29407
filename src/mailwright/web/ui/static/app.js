// Mailwright web interface: the little script the pages share (no inline script: the CSP
// forbids it). Forms with data-confirm ask before submitting; buttons with data-copy copy the
// text of the element they name.
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement && form.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element && event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (source && navigator.clipboard) navigator.clipboard.writeText(source.textContent.trim());
});
