/*
 * TeamSchedulerPro embed for customers' websites.
 *
 *   <script src="https://HOST/static/js/embed.js" data-tsp-url="https://HOST/ORG/MEETING/" async></script>
 *     puts the booking calendar where the script tag is;
 *   <div class="tsp-inline" data-tsp-url="https://HOST/ORG/MEETING/"></div>
 *     puts one inside each such placeholder (the script then needs no data-tsp-url).
 *
 * The iframe grows with its content, and scheduling events from it are re-dispatched
 * on this page's window:
 *   window.addEventListener("tsp:event_scheduled", (e) => console.log(e.detail));
 * Events: tsp:page_viewed, tsp:date_and_time_selected, tsp:event_scheduled.
 *
 * Runs on pages we do not control: no globals besides window.TSPEmbed, no dependencies,
 * never throws.
 */
(() => {
  "use strict";

  const MIN_HEIGHT = 640;
  const MAX_HEIGHT = 20000; // ignore absurd values rather than break the host's layout
  const EVENT_NAMES = ["page_viewed", "date_and_time_selected", "event_scheduled"];
  const DEFAULT_TITLE = "Booking calendar";

  const currentScript = document.currentScript;

  // The script may be included more than once (e.g. one tag per calendar); one shared
  // instance keeps a single message listener and remembers every iframe it made.
  const api = window.TSPEmbed || createApi();
  window.TSPEmbed = api;

  if (currentScript && currentScript.getAttribute("data-tsp-url")) {
    api.mountScript(currentScript);
  }
  api.scan();
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => api.scan());
  }

  function createApi() {
    const frames = []; // {iframe, origin}

    function embedUrl(rawUrl) {
      let url;
      try {
        url = new URL(rawUrl, document.baseURI);
      } catch (err) {
        return null;
      }
      if (url.protocol !== "https:" && url.protocol !== "http:") return null;
      url.searchParams.set("embed", "1"); // keeps any query string already there
      return url;
    }

    function createFrame(rawUrl, title) {
      const url = embedUrl(rawUrl);
      if (!url) return null;
      const iframe = document.createElement("iframe");
      iframe.src = url.toString();
      iframe.title = title || DEFAULT_TITLE;
      iframe.setAttribute("width", "100%");
      iframe.style.cssText = [
        "display:block",
        "width:100%",
        "border:0",
        "min-height:" + MIN_HEIGHT + "px",
        "height:" + MIN_HEIGHT + "px",
        "overflow:hidden",
        "background:transparent",
      ].join(";");
      const record = { iframe, origin: url.origin };
      frames.push(record);
      // Tells the page inside who we are, so it can address events to this origin only.
      // Sent on every load because the iframe navigates (calendar → form → confirmation).
      iframe.addEventListener("load", () => {
        if (iframe.contentWindow) iframe.contentWindow.postMessage({ type: "tsp:hello" }, record.origin);
      });
      return iframe;
    }

    function mountScript(script) {
      if (script.hasAttribute("data-tsp-mounted")) return;
      script.setAttribute("data-tsp-mounted", "");
      const iframe = createFrame(script.getAttribute("data-tsp-url"), script.getAttribute("data-tsp-title"));
      if (!iframe) return;
      const wrapper = document.createElement("div");
      wrapper.className = "tsp-inline-frame";
      wrapper.appendChild(iframe);
      const parent = script.parentNode;
      if (parent && parent !== document.head && parent !== document.documentElement) {
        parent.insertBefore(wrapper, script.nextSibling);
      } else {
        // A script in <head> has no visible place; put the calendar at the end of the body.
        whenBodyReady(() => document.body.appendChild(wrapper));
      }
    }

    function mountPlaceholder(node) {
      if (node.hasAttribute("data-tsp-mounted")) return;
      node.setAttribute("data-tsp-mounted", "");
      const iframe = createFrame(node.getAttribute("data-tsp-url"), node.getAttribute("data-tsp-title"));
      if (iframe) node.appendChild(iframe);
    }

    function scan() {
      document.querySelectorAll(".tsp-inline[data-tsp-url]").forEach(mountPlaceholder);
    }

    function whenBodyReady(callback) {
      if (document.body) callback();
      else document.addEventListener("DOMContentLoaded", callback);
    }

    function frameFor(event) {
      return frames.find((record) => (
        record.iframe.contentWindow === event.source && record.origin === event.origin
      ));
    }

    function resize(iframe, height) {
      if (typeof height !== "number" || !isFinite(height) || height <= 0) return;
      const clamped = Math.min(Math.max(Math.ceil(height), MIN_HEIGHT), MAX_HEIGHT);
      iframe.style.height = clamped + "px";
    }

    function dispatch(name, detail) {
      if (EVENT_NAMES.indexOf(name) === -1) return;
      window.dispatchEvent(new CustomEvent("tsp:" + name, { detail }));
    }

    // Only messages from one of our iframes, sent by the booking site's origin, count:
    // any other frame or window on the page could post look-alike messages.
    function onMessage(event) {
      const record = frameFor(event);
      if (!record) return;
      const data = event.data;
      if (!data || typeof data !== "object") return;
      if (data.type === "tsp:resize") {
        resize(record.iframe, data.height);
      } else if (data.type === "tsp:event" && typeof data.name === "string") {
        dispatch(data.name, data.detail);
      }
    }

    window.addEventListener("message", onMessage);

    return { mountScript, scan };
  }
})();
