/*
 * Working-hours editor on the profile page: add and remove interval rows, and copy
 * Monday to Tuesday–Friday, all in the page (nothing is saved until the form is posted).
 *
 * The server draws every day with its intervals plus one blank pair and hides the
 * buttons, so the page works without this script; here the buttons are shown and the
 * blank pair is dropped from days that already have hours, since "Add interval" now
 * does that job. Field names (day_N_start / day_N_end lists) never change, so the
 * server reads the rows in the order they stand.
 */
(() => {
  "use strict";

  const stringsElement = document.getElementById("hours-strings");
  if (!stringsElement) return;
  const strings = JSON.parse(stringsElement.textContent);
  const WEEKDAYS_AFTER_MONDAY = ["day_1", "day_2", "day_3", "day_4"]; // the weekend keeps its own hours
  const DEFAULT_DAY = ["09:00", "17:00"];

  // Django's "%(name)s" placeholders, filled from an object.
  const format = (template, values) => template.replace(/%\((\w+)\)s/g, (_match, key) => String(values[key]));

  const intervalText = (start, end) => `${start}–${end === "00:00" ? "24:00" : end}`;

  function rowsOf(group) {
    return Array.from(group.querySelectorAll("[data-interval]"));
  }

  function inputsOf(row) {
    const [start, end] = row.querySelectorAll('input[type="time"]');
    return { start, end };
  }

  function isFilled(row) {
    const { start, end } = inputsOf(row);
    return Boolean(start.value || end.value);
  }

  // Ids, labels and button names follow a row's position, so they are redone after every change.
  function renumber(group) {
    const name = group.dataset.name;
    const day = group.dataset.label;
    const rows = rowsOf(group);
    // The server refuses more anyway; offering no "Add" past the limit saves a round trip.
    group.querySelector("[data-add]").hidden = rows.length >= Number(group.dataset.max);
    rows.forEach((row, index) => {
      const n = index + 1;
      const { start, end } = inputsOf(row);
      start.id = `id_${name}_start_${n}`;
      end.id = `id_${name}_end_${n}`;
      const startLabel = row.querySelector("[data-start-label]");
      const endLabel = row.querySelector("[data-end-label]");
      startLabel.htmlFor = start.id;
      endLabel.htmlFor = end.id;
      startLabel.textContent = format(strings.start, { day, n });
      endLabel.textContent = format(strings.end, { day, n });
      updateRemoveLabel(group, row, n);
    });
  }

  function updateRemoveLabel(group, row, n) {
    const { start, end } = inputsOf(row);
    const day = group.dataset.label;
    const label = start.value && end.value
      ? format(strings.remove, { day, interval: intervalText(start.value, end.value) })
      : format(strings.removeEmpty, { day, n });
    row.querySelector("[data-remove]").setAttribute("aria-label", label);
  }

  function addRow(group, start = "", end = "") {
    const template = rowsOf(group)[0];
    const row = template.cloneNode(true);
    const inputs = inputsOf(row);
    inputs.start.value = start;
    inputs.end.value = end;
    group.querySelector("[data-interval-list]").append(row);
    return row;
  }

  function setRows(group, pairs) {
    const rows = rowsOf(group);
    rows.slice(1).forEach((row) => row.remove());
    const first = inputsOf(rows[0]);
    const [head, ...rest] = pairs.length ? pairs : [["", ""]];
    [first.start.value, first.end.value] = head;
    rest.forEach(([start, end]) => addRow(group, start, end));
    renumber(group);
  }

  function pairsOf(group) {
    return rowsOf(group)
      .filter(isFilled)
      .map((row) => {
        const { start, end } = inputsOf(row);
        return [start.value, end.value];
      });
  }

  function announce(form, text) {
    const status = form.querySelector("[data-hours-status]");
    if (!status) return;
    // Emptied first so that the same text said twice is announced twice.
    status.textContent = "";
    window.setTimeout(() => { status.textContent = text; }, 50);
  }

  function setUp(form) {
    form.querySelectorAll("[data-intervals]").forEach((group) => {
      group.querySelectorAll("[data-remove], [data-add]").forEach((button) => { button.hidden = false; });
      const rows = rowsOf(group);
      if (rows.some(isFilled)) {
        rows.filter((row) => !isFilled(row)).forEach((row) => row.remove());
      }
      renumber(group);
    });

    form.addEventListener("click", (event) => {
      const addButton = event.target.closest("[data-add]");
      const removeButton = event.target.closest("[data-remove]");
      const copyButton = event.target.closest("[data-copy-monday]");
      if (addButton) {
        const group = addButton.closest("[data-intervals]");
        const row = addRow(group);
        renumber(group);
        inputsOf(row).start.focus();
        announce(form, format(strings.added, { day: group.dataset.label, n: rowsOf(group).length }));
      } else if (removeButton) {
        removeRow(form, removeButton.closest("[data-interval]"));
      } else if (copyButton) {
        event.preventDefault(); // without this script the button posts the form and the server copies
        copyMonday(form);
      }
    });

    form.addEventListener("change", (event) => {
      const target = event.target;
      if (target.matches('input[type="time"]')) {
        const group = target.closest("[data-intervals]");
        const row = target.closest("[data-interval]");
        updateRemoveLabel(group, row, rowsOf(group).indexOf(row) + 1);
      } else if (target.matches("[data-available]") && target.checked && target.type === "checkbox") {
        // A day switched on with no hours gets a usual working day to edit rather than two blanks.
        const group = target.closest("[data-day]").querySelector("[data-intervals]");
        if (!rowsOf(group).some(isFilled)) setRows(group, [DEFAULT_DAY]);
      }
    });
  }

  function removeRow(form, row) {
    const group = row.closest("[data-intervals]");
    const { start, end } = inputsOf(row);
    const said = start.value && end.value ? intervalText(start.value, end.value) : "";
    const rows = rowsOf(group);
    const index = rows.indexOf(row);
    if (rows.length === 1) {
      // The last row is emptied rather than removed, so there is always a pair to type into.
      start.value = "";
      end.value = "";
    } else {
      row.remove();
    }
    renumber(group);
    const remaining = rowsOf(group);
    const next = remaining[Math.min(index, remaining.length - 1)];
    (rows.length === 1 ? group.querySelector("[data-add]") : next.querySelector("[data-remove]")).focus();
    const day = group.dataset.label;
    announce(form, said ? format(strings.removed, { day, interval: said }) : format(strings.removedEmpty, { day, n: index + 1 }));
  }

  function copyMonday(form) {
    const monday = form.querySelector('[data-intervals][data-name="day_0"]');
    const mondayOn = form.querySelector("#id_day_0_available").checked;
    const pairs = pairsOf(monday);
    WEEKDAYS_AFTER_MONDAY.forEach((name) => {
      form.querySelector(`#id_${name}_available`).checked = mondayOn;
      setRows(form.querySelector(`[data-intervals][data-name="${name}"]`), pairs);
    });
    announce(form, strings.copied);
  }

  document.querySelectorAll("[data-hours-editor]").forEach(setUp);
})();
