/*
 * Public booking calendar: month grid of days with free times, the times of the
 * chosen day, and a time-zone picker. Data comes from the slots JSON endpoint
 * (data-slots-url); picking a time navigates to the booking form (data-select-url).
 *
 * Dates are handled as "YYYY-MM-DD" strings in the visitor's chosen zone, exactly as
 * the endpoint sends them. To display one we build a Date at 12:00 UTC and format it
 * in UTC, so the label can never slide to the neighbouring day.
 */
(() => {
  "use strict";

  const root = document.getElementById("booking-picker");
  if (!root) return;

  const strings = readJsonElement("booking-strings");
  const config = {
    slotsUrl: root.dataset.slotsUrl,
    selectUrl: root.dataset.selectUrl,
    initialTimeZone: root.dataset.initialTimeZone || "",
    initialMonth: root.dataset.initialMonth || "",
    embed: root.dataset.embed === "1",
    prefillName: root.dataset.prefillName || "",
    prefillEmail: root.dataset.prefillEmail || "",
  };

  const el = {
    calendar: document.getElementById("booking-calendar"),
    monthLabel: document.getElementById("booking-month-label"),
    prev: document.getElementById("booking-prev-month"),
    next: document.getElementById("booking-next-month"),
    weekdays: document.getElementById("booking-weekdays"),
    days: document.getElementById("booking-days"),
    loading: document.getElementById("booking-loading"),
    loadingText: document.getElementById("booking-loading-text"),
    empty: document.getElementById("booking-empty"),
    emptyText: document.getElementById("booking-empty-text"),
    emptyNext: document.getElementById("booking-empty-next"),
    error: document.getElementById("booking-error"),
    errorText: document.getElementById("booking-error-text"),
    retry: document.getElementById("booking-retry"),
    tzSelect: document.getElementById("booking-tz"),
    tzNote: document.getElementById("booking-tz-note"),
    slotsHeading: document.getElementById("booking-slots-heading"),
    slotsStatus: document.getElementById("booking-slots-status"),
    slotsHint: document.getElementById("booking-slots-hint"),
    slotList: document.getElementById("booking-slot-list"),
  };

  // Month names, weekdays and times follow the browser's locale, named explicitly: the server
  // formats the form, confirmation and emails in the same one (the first Accept-Language tag,
  // i.e. navigator.language) with the same CLDR patterns (tsp/formatting.py). Plural forms must
  // match the language the strings were translated into, i.e. the page language.
  const LOCALE = supportedLocale(navigator.language);
  const fullDateFormat = new Intl.DateTimeFormat(LOCALE, { dateStyle: "full", timeZone: "UTC" });
  const monthFormat = new Intl.DateTimeFormat(LOCALE, { month: "long", year: "numeric", timeZone: "UTC" });
  const pluralRules = new Intl.PluralRules(document.documentElement.lang || undefined);

  const CACHE_MS = 60 * 1000; // short enough that a freshly booked slot soon disappears

  const state = {
    timeZone: "",
    data: null, // last successful endpoint response
    selectedDate: null, // "YYYY-MM-DD" whose times are listed
    focusDate: null, // day that owns tabindex=0 in the grid
    loading: false,
    lastRequest: null, // {month, timeZone} to retry after an error
    requestSeq: 0,
    controller: null,
    cache: new Map(),
  };

  /* ---------- small helpers ---------- */

  function supportedLocale(tag) {
    try {
      return tag && Intl.DateTimeFormat.supportedLocalesOf([tag]).length ? tag : undefined;
    } catch (err) {
      return undefined;
    }
  }

  function readJsonElement(id) {
    const node = document.getElementById(id);
    try {
      return node ? JSON.parse(node.textContent) : {};
    } catch (err) {
      return {};
    }
  }

  // Fills "{name}" placeholders; the translated templates come from booking-strings.
  function t(key, values = {}) {
    const template = strings[key] || "";
    return template.replace(/\{(\w+)\}/g, (match, name) => (name in values ? String(values[name]) : match));
  }

  function timesAvailable(count) {
    // Only "one"/"other" are provided by the template; languages with more plural
    // categories fall back to the "other" form.
    const key = pluralRules.select(count) === "one" ? "timesAvailableOne" : "timesAvailableOther";
    return t(key, { count: count.toLocaleString(LOCALE) });
  }

  function dateFromIso(isoDate) {
    return new Date(isoDate + "T12:00:00Z");
  }

  function isoFromDate(date) {
    return date.toISOString().slice(0, 10);
  }

  function addDays(isoDate, days) {
    const date = dateFromIso(isoDate);
    date.setUTCDate(date.getUTCDate() + days);
    return isoFromDate(date);
  }

  function formatFullDate(isoDate) {
    return fullDateFormat.format(dateFromIso(isoDate));
  }

  function formatMonth(month) {
    return monthFormat.format(dateFromIso(month + "-01"));
  }

  function daysInMonth(month) {
    const [year, monthNumber] = month.split("-").map(Number);
    return new Date(Date.UTC(year, monthNumber, 0)).getUTCDate();
  }

  // Monday = 0 … Sunday = 6.
  function weekdayIndex(isoDate) {
    return (dateFromIso(isoDate).getUTCDay() + 6) % 7;
  }

  // "2026-12" and day 3 → "2026-12-03", clamped to the month's length.
  function dateInMonth(month, day) {
    const clamped = Math.min(Math.max(day, 1), daysInMonth(month));
    return month + "-" + String(clamped).padStart(2, "0");
  }

  function shiftMonth(month, delta) {
    const [year, monthNumber] = month.split("-").map(Number);
    const date = new Date(Date.UTC(year, monthNumber - 1 + delta, 1, 12));
    return isoFromDate(date).slice(0, 7);
  }

  function makeTimeFormat(timeZone) {
    try {
      // timeStyle "short" is CLDR's short time pattern, as Babel's format_time(…, "short"):
      // "9:00 AM" in en-US, "09:00" in en-GB.
      return new Intl.DateTimeFormat(LOCALE, { timeStyle: "short", timeZone });
    } catch (err) {
      return null; // zone unknown to this browser: fall back to the server's label
    }
  }

  function slotsFor(isoDate) {
    return (state.data && state.data.days && state.data.days[isoDate]) || [];
  }

  function availableDates() {
    return Object.keys((state.data && state.data.days) || {}).sort();
  }

  function setAriaDisabled(button, disabled) {
    button.setAttribute("aria-disabled", disabled ? "true" : "false");
  }

  function isAriaDisabled(button) {
    return button.getAttribute("aria-disabled") === "true";
  }

  /* ---------- time zone ---------- */

  // The select's value for a zone name; browsers may report an older name ("Asia/Calcutta"),
  // which tz-picker.js maps to the listed one ("Asia/Kolkata").
  function resolveZone(zone) {
    if (!zone) return "";
    if (window.tspTimeZones) return window.tspTimeZones.resolve(el.tzSelect, zone);
    return Array.from(el.tzSelect.options).some((option) => option.value === zone) ? zone : "";
  }

  function detectTimeZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (err) {
      return "";
    }
  }

  function chooseInitialTimeZone() {
    const select = el.tzSelect;
    const candidates = [config.initialTimeZone, detectTimeZone(), "UTC"].map(resolveZone);
    const match = candidates.find(Boolean);
    if (match) select.value = match;
    return select.value || "UTC";
  }

  function zoneLabel(zone) {
    if (window.tspTimeZones) return window.tspTimeZones.label(el.tzSelect, zone);
    const option = Array.from(el.tzSelect.options).find((item) => item.value === zone);
    return option ? option.textContent.trim() : zone;
  }

  function renderTimeZoneNote() {
    el.tzNote.textContent = t("timesShownIn", { zone: zoneLabel(state.timeZone) });
  }

  /* ---------- loading data ---------- */

  function buildSlotsUrl(month, timeZone) {
    const url = new URL(config.slotsUrl, window.location.href);
    if (month) url.searchParams.set("month", month);
    url.searchParams.set("tz", timeZone);
    return url.toString();
  }

  async function fetchMonth(month, timeZone, signal) {
    const key = (month || "first") + "|" + timeZone;
    const cached = state.cache.get(key);
    if (cached && Date.now() - cached.at < CACHE_MS) return cached.data;

    const response = await fetch(buildSlotsUrl(month, timeZone), {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      signal,
    });
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (!response.ok || !body || body.error) {
      const error = new Error("slots request failed");
      error.userMessage = body && typeof body.error === "string" ? body.error : "";
      throw error;
    }
    state.cache.set(key, { data: body, at: Date.now() });
    if (!month) state.cache.set(body.month + "|" + timeZone, { data: body, at: Date.now() });
    return body;
  }

  /**
   * Loads a month (or, with month "", the first month that has times) and redraws.
   * options.focusDate: move keyboard focus to this day afterwards (keyboard paging).
   * options.announce: read the selected day out (the visitor asked for the change).
   * options.focusGrid: put focus back into the grid (the control used is going away).
   */
  async function loadMonth(month, options = {}) {
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    const seq = ++state.requestSeq;
    state.lastRequest = { month, options };
    setLoading(true);

    try {
      const data = await fetchMonth(month, state.timeZone, controller.signal);
      if (seq !== state.requestSeq) return; // a newer request superseded this one
      setLoading(false);
      showData(data, options);
    } catch (err) {
      if (seq !== state.requestSeq || err.name === "AbortError") return;
      setLoading(false);
      showError(err.userMessage || t("loadError"));
    }
  }

  function setLoading(loading) {
    state.loading = loading;
    el.calendar.setAttribute("aria-busy", loading ? "true" : "false");
    el.calendar.classList.toggle("is-loading", loading);
    root.classList.toggle("is-loading", loading);
    el.loading.hidden = !loading;
    if (loading) {
      el.error.hidden = true;
      el.empty.hidden = true;
    }
  }

  // The days and times on screen belong to the previous request (another month or
  // zone), so they are cleared rather than left clickable under the message.
  function showError(message) {
    state.data = null;
    el.days.replaceChildren();
    renderSlots(false);
    setAriaDisabled(el.prev, true);
    setAriaDisabled(el.next, true);
    const month = state.lastRequest && state.lastRequest.month;
    if (month) el.monthLabel.textContent = formatMonth(month);
    el.errorText.textContent = message;
    el.error.hidden = false;
    el.calendar.classList.add("has-error");
  }

  function showData(data, options) {
    el.calendar.classList.remove("has-error");
    state.data = data;
    const served = resolveZone(data.time_zone);
    if (served && served !== state.timeZone) {
      // The server may normalise the zone; keep the select in step with what it used.
      state.timeZone = served;
      el.tzSelect.value = served;
    }
    state.selectedDate = pickSelectedDate();
    state.focusDate = options.focusDate ? dateInMonth(data.month, Number(options.focusDate.slice(8))) : null;

    renderMonthHeader();
    renderGrid();
    renderEmptyState();
    renderSlots(Boolean(options.announce));
    renderTimeZoneNote();
    rememberInUrl();

    if (options.focusDate) {
      focusDay(state.focusDate);
    } else if (options.focusGrid) {
      focusGridAfterLoad();
    }
  }

  // The empty-month button hides itself once the next month is shown; without this
  // keyboard focus would fall back to the top of the page.
  function focusGridAfterLoad() {
    if (!el.empty.hidden && !el.emptyNext.hidden) {
      el.emptyNext.focus();
      return;
    }
    const button = el.days.querySelector('button[data-date][tabindex="0"]');
    if (button) button.focus();
  }

  // Keep the visitor's day when it still has times (e.g. after a zone change),
  // otherwise open the first day of the month that has any.
  function pickSelectedDate() {
    const dates = availableDates();
    if (state.selectedDate && dates.includes(state.selectedDate)) return state.selectedDate;
    return dates[0] || null;
  }

  // Lets a reload (or Back from the form) reopen the same month and zone.
  function rememberInUrl() {
    if (!window.history || !window.history.replaceState) return;
    const url = new URL(window.location.href);
    url.searchParams.set("month", state.data.month);
    url.searchParams.set("tz", state.timeZone);
    try {
      window.history.replaceState(window.history.state, "", url.toString());
    } catch (err) {
      // Some sandboxed iframes forbid history changes; the calendar works without it.
    }
  }

  /* ---------- rendering ---------- */

  function renderWeekdays() {
    const short = new Intl.DateTimeFormat(LOCALE, { weekday: "short", timeZone: "UTC" });
    const long = new Intl.DateTimeFormat(LOCALE, { weekday: "long", timeZone: "UTC" });
    const monday = "2024-01-01"; // any Monday
    const cells = [];
    for (let i = 0; i < 7; i += 1) {
      const date = dateFromIso(addDays(monday, i));
      const th = document.createElement("th");
      th.scope = "col";
      const abbr = document.createElement("abbr");
      abbr.title = long.format(date);
      abbr.textContent = short.format(date);
      th.appendChild(abbr);
      cells.push(th);
    }
    el.weekdays.replaceChildren(...cells);
  }

  function renderMonthHeader() {
    const data = state.data;
    el.monthLabel.textContent = formatMonth(data.month);
    setAriaDisabled(el.prev, !data.previous_month);
    setAriaDisabled(el.next, !data.next_month);
  }

  function renderGrid() {
    const month = state.data.month;
    const total = daysInMonth(month);
    const lead = weekdayIndex(month + "-01");
    const rows = [];
    let row = document.createElement("tr");

    for (let i = 0; i < lead; i += 1) row.appendChild(blankCell());
    for (let day = 1; day <= total; day += 1) {
      const cell = document.createElement("td");
      cell.appendChild(dayButton(dateInMonth(month, day)));
      row.appendChild(cell);
      if (row.children.length === 7) {
        rows.push(row);
        row = document.createElement("tr");
      }
    }
    if (row.children.length) {
      while (row.children.length < 7) row.appendChild(blankCell());
      rows.push(row);
    }
    el.days.replaceChildren(...rows);
    updateRovingTabindex();
  }

  function blankCell() {
    const cell = document.createElement("td");
    cell.className = "cal-blank";
    return cell;
  }

  function dayButton(isoDate) {
    const count = slotsFor(isoDate).length;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "cal-day";
    button.dataset.date = isoDate;
    button.tabIndex = -1;
    button.textContent = String(Number(isoDate.slice(8)));
    button.setAttribute("aria-label", t("dayLabel", {
      date: formatFullDate(isoDate),
      availability: count ? timesAvailable(count) : t("noTimes"),
    }));
    if (count) {
      button.classList.add("is-available");
      setAriaDisabled(button, false);
    } else {
      // aria-disabled rather than disabled: the day stays focusable so arrow keys
      // can move across it, but it cannot be chosen.
      setAriaDisabled(button, true);
    }
    if (isoDate === state.data.today) button.setAttribute("aria-current", "date");
    button.setAttribute("aria-pressed", isoDate === state.selectedDate ? "true" : "false");
    return button;
  }

  function dayButtons() {
    return Array.from(el.days.querySelectorAll("button[data-date]"));
  }

  function findDayButton(isoDate) {
    return el.days.querySelector('button[data-date="' + isoDate + '"]');
  }

  // Exactly one day is in the Tab order: the focused one, else the selected one,
  // else the first day with times, else the 1st.
  function updateRovingTabindex() {
    const buttons = dayButtons();
    if (!buttons.length) return;
    const firstAvailable = buttons.find((button) => !isAriaDisabled(button));
    const target = [state.focusDate, state.selectedDate]
      .map((date) => date && findDayButton(date))
      .find(Boolean) || firstAvailable || buttons[0];
    buttons.forEach((button) => {
      button.tabIndex = button === target ? 0 : -1;
    });
  }

  function renderEmptyState() {
    const data = state.data;
    const empty = availableDates().length === 0;
    el.calendar.classList.toggle("is-empty", empty);
    el.empty.hidden = !empty;
    if (!empty) return;
    el.emptyText.textContent = t("noTimesInMonth", { month: formatMonth(data.month) });
    el.emptyNext.hidden = !data.next_month;
    if (data.next_month) el.emptyNext.textContent = t("goToMonth", { month: formatMonth(data.next_month) });
  }

  function renderSlots(announce) {
    const isoDate = state.selectedDate;
    if (!isoDate || !state.data) {
      el.slotsHeading.textContent = "";
      el.slotsHint.textContent = availableDates().length ? t("pickDay") : "";
      el.slotsHint.hidden = !el.slotsHint.textContent;
      el.slotList.replaceChildren();
      el.slotsStatus.textContent = "";
      root.classList.remove("has-day");
      return;
    }

    const slots = slotsFor(isoDate);
    const fullDate = formatFullDate(isoDate);
    const timeFormat = makeTimeFormat(state.data.time_zone || state.timeZone);
    el.slotsHeading.textContent = fullDate;
    el.slotsHint.hidden = true;
    el.slotList.replaceChildren(...slots.map((slot) => slotItem(slot, fullDate, timeFormat)));
    root.classList.add("has-day");

    // Setting the same text twice is not re-announced, so clear first.
    el.slotsStatus.textContent = "";
    if (announce) {
      el.slotsStatus.textContent = t("dayLabel", { date: fullDate, availability: timesAvailable(slots.length) });
    }
  }

  function slotItem(slot, fullDate, timeFormat) {
    const label = timeFormat ? timeFormat.format(new Date(slot.start)) : slot.time;
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "slot";
    button.dataset.start = slot.start;
    button.textContent = label;
    button.setAttribute("aria-label", t("slotLabel", { time: label, date: fullDate }));
    item.appendChild(button);
    return item;
  }

  /* ---------- interaction ---------- */

  function selectDay(isoDate) {
    state.selectedDate = isoDate;
    state.focusDate = isoDate;
    dayButtons().forEach((button) => {
      button.setAttribute("aria-pressed", button.dataset.date === isoDate ? "true" : "false");
    });
    updateRovingTabindex();
    renderSlots(true);
  }

  function focusDay(isoDate) {
    const button = findDayButton(isoDate);
    if (!button) return;
    state.focusDate = isoDate;
    updateRovingTabindex();
    button.focus();
  }

  // Moves keyboard focus to any date; crossing into a neighbouring month loads it
  // when the endpoint allows navigating that way.
  function moveFocusTo(isoDate) {
    const data = state.data;
    const targetMonth = isoDate.slice(0, 7);
    if (targetMonth === data.month) {
      focusDay(isoDate);
    } else if (targetMonth < data.month && data.previous_month) {
      loadMonth(data.previous_month, { focusDate: isoDate });
    } else if (targetMonth > data.month && data.next_month) {
      loadMonth(data.next_month, { focusDate: isoDate });
    }
  }

  function onGridKeydown(event) {
    const button = event.target.closest("button[data-date]");
    if (!button || state.loading || event.altKey || event.ctrlKey || event.metaKey) return;
    const date = button.dataset.date;
    const rtl = getComputedStyle(el.days).direction === "rtl";
    const month = date.slice(0, 7);
    const day = Number(date.slice(8));
    let target = null;

    switch (event.key) {
      case "ArrowLeft": target = addDays(date, rtl ? 1 : -1); break;
      case "ArrowRight": target = addDays(date, rtl ? -1 : 1); break;
      case "ArrowUp": target = addDays(date, -7); break;
      case "ArrowDown": target = addDays(date, 7); break;
      // Home/End stay inside the month so they never trigger a load.
      case "Home": target = maxDate(addDays(date, -weekdayIndex(date)), month + "-01"); break;
      case "End": target = minDate(addDays(date, 6 - weekdayIndex(date)), dateInMonth(month, 31)); break;
      case "PageUp": target = dateInMonth(shiftMonth(month, -1), day); break;
      case "PageDown": target = dateInMonth(shiftMonth(month, 1), day); break;
      default: return; // Enter and Space reach the button's own click handling.
    }
    event.preventDefault();
    moveFocusTo(target);
  }

  function maxDate(a, b) { return a > b ? a : b; }
  function minDate(a, b) { return a < b ? a : b; }

  function onGridClick(event) {
    const button = event.target.closest("button[data-date]");
    if (!button || state.loading) return;
    state.focusDate = button.dataset.date;
    if (isAriaDisabled(button)) {
      updateRovingTabindex();
      return;
    }
    selectDay(button.dataset.date);
    // event.detail is 0 for Enter/Space: keyboard users Tab on to the times instead.
    if (event.detail > 0) revealSlots();
  }

  // On narrow screens the times sit below the calendar, possibly off screen.
  function revealSlots() {
    const top = el.slotsHeading.getBoundingClientRect().top;
    if (top >= 0 && top < window.innerHeight - 120) return;
    const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    el.slotsHeading.scrollIntoView({ block: "start", behavior: reduceMotion ? "auto" : "smooth" });
  }

  function onMonthNav(direction, options = {}) {
    if (state.loading || !state.data) return;
    const month = direction < 0 ? state.data.previous_month : state.data.next_month;
    if (month) loadMonth(month, Object.assign({ announce: true }, options));
  }

  function onTimeZoneChange() {
    state.timeZone = el.tzSelect.value;
    renderTimeZoneNote();
    // Slots can land on other dates in the new zone, so the month is fetched again.
    const month = state.data ? state.data.month : (state.lastRequest && state.lastRequest.month) || config.initialMonth;
    loadMonth(month, { announce: true });
  }

  function onRetry() {
    const last = state.lastRequest || { month: config.initialMonth, options: {} };
    loadMonth(last.month, last.options);
  }

  function buildSelectUrl(start) {
    // Built by hand (not URLSearchParams) so values are encoded with encodeURIComponent.
    const params = [["start", start], ["tz", state.timeZone]];
    if (config.embed) params.push(["embed", "1"]);
    if (config.prefillName) params.push(["name", config.prefillName]);
    if (config.prefillEmail) params.push(["email", config.prefillEmail]);
    const query = params.map(([key, value]) => key + "=" + encodeURIComponent(value)).join("&");
    return config.selectUrl + (config.selectUrl.includes("?") ? "&" : "?") + query;
  }

  function onSlotClick(event) {
    const button = event.target.closest("button.slot");
    if (!button || root.classList.contains("is-navigating")) return;
    const start = button.dataset.start;
    if (typeof window.tspEmbedEvent === "function") {
      window.tspEmbedEvent("date_and_time_selected", { start });
    }
    // Guard against double clicks while the form page loads.
    root.classList.add("is-navigating");
    button.classList.add("is-chosen");
    button.setAttribute("aria-busy", "true");
    window.location.assign(buildSelectUrl(start));
  }

  // Coming Back from the form may restore this page from the back/forward cache
  // with the "navigating" state still on.
  function onPageShow(event) {
    if (!event.persisted) return;
    root.classList.remove("is-navigating");
    el.slotList.querySelectorAll(".slot.is-chosen").forEach((button) => {
      button.classList.remove("is-chosen");
      button.removeAttribute("aria-busy");
    });
  }

  /* ---------- start ---------- */

  function init() {
    el.loadingText.textContent = t("loading");
    el.retry.textContent = t("retry");
    renderWeekdays();
    state.timeZone = chooseInitialTimeZone();
    renderTimeZoneNote();

    el.days.addEventListener("keydown", onGridKeydown);
    el.days.addEventListener("click", onGridClick);
    el.prev.addEventListener("click", () => { if (!isAriaDisabled(el.prev)) onMonthNav(-1); });
    el.next.addEventListener("click", () => { if (!isAriaDisabled(el.next)) onMonthNav(1); });
    el.emptyNext.addEventListener("click", () => onMonthNav(1, { focusGrid: true }));
    el.retry.addEventListener("click", onRetry);
    el.tzSelect.addEventListener("change", onTimeZoneChange);
    el.slotList.addEventListener("click", onSlotClick);
    window.addEventListener("pageshow", onPageShow);

    root.hidden = false;
    loadMonth(config.initialMonth);
  }

  init();
})();
