/*
 * Runs inside the booking iframe (public pages rendered with ?embed=1) and talks to
 * embed.js on the customer's page:
 *   {type: "tsp:resize", height}       so the iframe can grow/shrink with the content;
 *   {type: "tsp:event", name, detail}  scheduling events re-dispatched on the host page.
 * Pages call window.tspEmbedEvent(name, detail) to send an event.
 *
 * The embedding page is someone else's site: nothing secret or personal goes to it (no manage
 * link, no client's name or e-mail), only the public booking page's address, the meeting type
 * and the chosen time.
 */
(() => {
  "use strict";

  const parentWindow = window.parent;
  if (!parentWindow || parentWindow === window) {
    // Opened directly rather than in an iframe: keep the hook so callers need no checks.
    window.tspEmbedEvent = () => {};
    return;
  }

  /* ---------- height ---------- */

  let lastHeight = 0;
  let frameRequested = false;

  // The height of the page's content. documentElement.scrollHeight is never smaller than
  // the iframe's current height, so with it the frame could grow but never shrink (e.g.
  // from the tall calendar to the short confirmation page). The body's own box gives the
  // real content height; booking.css makes the embedded body a block formatting context
  // so children's margins are inside that box.
  function contentHeight() {
    const body = document.body;
    if (!body) return document.documentElement.scrollHeight;
    const style = window.getComputedStyle(body);
    const margins = parseFloat(style.marginTop) + parseFloat(style.marginBottom);
    return Math.ceil(body.getBoundingClientRect().height + (margins || 0));
  }

  function postHeight() {
    frameRequested = false;
    const height = contentHeight();
    if (height === lastHeight) return;
    lastHeight = height;
    // targetOrigin "*" is fine here: the message carries nothing but a number of pixels,
    // which is no secret, and we do not know (or need to know) who embeds us to send it.
    parentWindow.postMessage({ type: "tsp:resize", height }, "*");
  }

  // Several size changes in one frame produce one message.
  function scheduleHeight() {
    if (frameRequested) return;
    frameRequested = true;
    window.requestAnimationFrame(postHeight);
  }

  /* ---------- events ---------- */

  // Scheduling events can carry booking details, so unlike the height they go only to
  // the embedding page's origin. Chromium and Safari expose it as ancestorOrigins; other
  // browsers learn it from the "tsp:hello" message embed.js sends on every iframe load.
  // Events raised before the origin is known wait in a queue.
  let parentOrigin = null;
  const queue = [];

  function validOrigin(origin) {
    return typeof origin === "string" && /^https?:\/\/[^/]+$/.test(origin);
  }

  if (window.location.ancestorOrigins && window.location.ancestorOrigins.length) {
    const origin = window.location.ancestorOrigins[0];
    if (validOrigin(origin)) parentOrigin = origin;
  }

  function flushQueue() {
    while (parentOrigin && queue.length) {
      parentWindow.postMessage(queue.shift(), parentOrigin);
    }
  }

  function onMessage(event) {
    if (event.source !== parentWindow) return;
    const data = event.data;
    if (!data || typeof data !== "object" || data.type !== "tsp:hello") return;
    if (!validOrigin(event.origin)) return;
    parentOrigin = event.origin;
    flushQueue();
    // The host may have missed earlier size messages if it attached late.
    lastHeight = 0;
    scheduleHeight();
  }

  function tspEmbedEvent(name, detail) {
    queue.push({ type: "tsp:event", name: String(name), detail: detail === undefined ? {} : detail });
    flushQueue();
  }

  function readEventDetail(node) {
    const raw = node.getAttribute("data-tsp-detail");
    if (!raw) return {};
    try {
      return JSON.parse(raw);
    } catch (err) {
      return {};
    }
  }

  // The public booking page this page belongs to, never this page's own address: after booking
  // that is the client's manage link (/booking/<id>/<secret>/), which would let the embedding
  // site read and cancel the booking; and a query string can hold the visitor's name and e-mail.
  function publicPageUrl() {
    const main = document.getElementById("main");
    const path = main ? main.getAttribute("data-tsp-public-path") : null;
    return window.location.origin + (path && /^\/[^/]/.test(path) ? path : "/");
  }

  // Confirmation pages mark themselves with <div data-tsp-event="event_scheduled"
  // data-tsp-detail='{...}'>.
  function sendPageEvents() {
    tspEmbedEvent("page_viewed", { url: publicPageUrl() });
    document.querySelectorAll("[data-tsp-event]").forEach((node) => {
      const name = node.getAttribute("data-tsp-event");
      if (name) tspEmbedEvent(name, readEventDetail(node));
    });
  }

  /* ---------- start ---------- */

  window.tspEmbedEvent = tspEmbedEvent;
  window.addEventListener("message", onMessage);

  function onLoad() {
    scheduleHeight();
    if ("ResizeObserver" in window) {
      new ResizeObserver(scheduleHeight).observe(document.body);
    } else {
      window.addEventListener("resize", scheduleHeight);
    }
    sendPageEvents();
  }

  if (document.readyState === "complete") {
    onLoad();
  } else {
    window.addEventListener("load", onLoad);
  }
})();
