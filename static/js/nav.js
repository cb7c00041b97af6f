// Side navigation on narrow screens: the "Menu" button folds the list away and opens it again.
// Loaded right after the <nav> so the list is folded before the first paint; without this script
// the button stays hidden and the list simply stays open.
(function () {
  "use strict";
  const toggle = document.querySelector(".nav-toggle");
  const nav = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
  if (!nav) return;
  const narrow = window.matchMedia("(max-width: 760px)");

  function setOpen(open) {
    toggle.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("is-folded", !open);
  }

  toggle.hidden = false;
  setOpen(!narrow.matches);
  narrow.addEventListener("change", function () { setOpen(!narrow.matches); });
  toggle.addEventListener("click", function () {
    setOpen(toggle.getAttribute("aria-expanded") !== "true");
  });
  nav.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && narrow.matches) {
      setOpen(false);
      toggle.focus();
    }
  });
})();
