// Copy buttons: <button data-copy="#input-id">. Announces the result for screen readers.
(function () {
  "use strict";
  const status = document.getElementById("copy-status");
  document.addEventListener("click", async function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const field = document.querySelector(button.dataset.copy);
    if (!field) return;
    const original = button.textContent;
    try {
      await navigator.clipboard.writeText(field.value);
    } catch (error) {
      // Clipboard API refused (http page, old browser): fall back to selecting the text.
      field.select();
      document.execCommand("copy");
    }
    button.textContent = "✓";
    if (status) status.textContent = original.trim() + " ✓";
    setTimeout(function () { button.textContent = original; }, 1500);
  });
})();
