/*
 * Time zone pickers. The page serves a native <select data-tz-picker> (members/timezones.py),
 * which works without JavaScript; this adds a search box above it that narrows the options by
 * their label ("Pacific Time — Los Angeles (GMT−8)"), IANA name and older names ("Calcutta").
 *
 *   data-tz-detect   choose the browser's zone (sign-up)
 *   data-tz-suggest  offer the browser's zone when it differs from the saved one (profile);
 *                    saving stays the person's own action
 *
 * Browsers may report an older name for their zone (Chromium says "Asia/Calcutta"), so zones are
 * matched through each option's data-aliases. window.tspTimeZones.resolve() does that for
 * booking.js as well.
 */
(() => {
  "use strict";

  const pickers = new WeakMap(); // select → its full list of options, while some are filtered out

  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (err) {
      return "";
    }
  }

  function allOptions(select) {
    return pickers.get(select) || Array.from(select.options);
  }

  function findOption(select, zone) {
    if (!zone) return null;
    return allOptions(select).find(
      (option) => option.value === zone || (option.dataset.aliases || "").split(" ").includes(zone)
    ) || null;
  }

  // The option value for a zone name (canonical or older), or "" when the list has no such zone.
  function resolve(select, zone) {
    const option = findOption(select, zone);
    return option ? option.value : "";
  }

  function label(select, zone) {
    const option = findOption(select, zone);
    return option ? option.textContent.trim() : zone;
  }

  // Case, accents, "_" and "/" and the minus sign don't matter when searching.
  function fold(text) {
    return text
      .normalize("NFD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[_/]/g, " ")
      .replace(/\u2212/g, "-");
  }

  function choose(select, value) {
    if (!value || select.value === value) return;
    const option = findOption(select, value);
    if (option && !option.parentNode) select.prepend(option); // filtered out at the moment
    select.value = value;
    select.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function setUp(select, index) {
    const options = Array.from(select.options);
    pickers.set(select, options);
    const haystacks = new Map(
      options.map((option) => [option, fold([option.textContent, option.value, option.dataset.aliases || ""].join(" "))])
    );

    const id = (select.id || "tz-picker-" + index) + "-search";
    const box = document.createElement("div");
    box.className = "tz-search";
    const caption = document.createElement("label");
    caption.className = "tz-search-label";
    caption.htmlFor = id;
    caption.textContent = select.dataset.filterLabel || "Search time zones";
    const input = document.createElement("input");
    input.type = "text";
    input.id = id;
    input.className = "tz-search-input";
    input.autocomplete = "off";
    input.spellcheck = false;
    input.placeholder = select.dataset.filterPlaceholder || "";
    input.setAttribute("enterkeyhint", "search");
    if (select.id) input.setAttribute("aria-controls", select.id);
    const status = document.createElement("span");
    status.className = "visually-hidden";
    status.id = id + "-status";
    status.setAttribute("aria-live", "polite");
    input.setAttribute("aria-describedby", status.id);
    box.append(caption, input, status);
    const anchor = select.closest(".tz-select-wrap") || select;
    anchor.parentNode.insertBefore(box, anchor);

    let matches = options;
    let announceTimer = 0;

    function countText(count) {
      if (count === 0) return select.dataset.countNone || "";
      if (count === 1) return select.dataset.countOne || "";
      return (select.dataset.countOther || "").replace("{count}", count.toLocaleString(navigator.language || undefined));
    }

    function applyFilter() {
      const words = fold(input.value).split(/\s+/).filter(Boolean);
      matches = words.length ? options.filter((option) => words.every((word) => haystacks.get(option).includes(word))) : options;
      // The chosen zone stays in the list even when it doesn't match: filtering never changes the value.
      const current = options.find((option) => option.value === select.value);
      select.replaceChildren(...(current && !matches.includes(current) ? [current, ...matches] : matches));
      if (current) current.selected = true;
      // Announced once typing pauses, not on every key.
      window.clearTimeout(announceTimer);
      announceTimer = window.setTimeout(() => {
        status.textContent = words.length ? countText(matches.length) : "";
      }, 400);
    }

    input.addEventListener("input", applyFilter);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault(); // choosing, not submitting the form
        if (input.value.trim() && matches.length) choose(select, matches[0].value);
      } else if (event.key === "ArrowDown") {
        event.preventDefault();
        select.focus();
      } else if (event.key === "Escape" && input.value) {
        event.preventDefault();
        input.value = "";
        applyFilter();
      }
    });

    if ("tzDetect" in select.dataset) {
      const detected = resolve(select, browserZone());
      if (detected) select.value = detected;
    }
    if (select.dataset.tzSuggest) suggestBrowserZone(select, anchor);
  }

  function suggestBrowserZone(select, anchor) {
    const zone = resolve(select, browserZone());
    if (!zone || zone === select.value) return;
    const note = document.createElement("p");
    note.className = "tz-suggest";
    const [before, after = ""] = select.dataset.tzSuggest.split("{zone}");
    const name = document.createElement("strong");
    name.textContent = label(select, zone);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "btn btn-ghost tz-suggest-use";
    button.textContent = select.dataset.tzUse || "Use it";
    button.addEventListener("click", () => {
      choose(select, zone);
      select.focus();
    });
    const sentence = document.createElement("span");
    sentence.append(before, name, after);
    note.append(sentence, button);
    anchor.after(note);
    select.addEventListener("change", () => {
      note.hidden = select.value === zone;
    });
  }

  window.tspTimeZones = { resolve, label, browserZone };

  function init() {
    document.querySelectorAll("select[data-tz-picker]").forEach(setUp);
  }

  // booking.js (also deferred, later in the page) relies on the pickers being set up first.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init, { once: true });
  } else {
    init();
  }
})();
