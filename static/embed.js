// leadgate's embed, on the page that frames an offer's form (e.g. WordPress):
// - hands the page's attribution (UTM, gclid, fbclid, its referrer) to the framed form,
//   which never overwrites what the snippet's URL already says;
// - sizes each frame to its form from the form's own height reports.
// Only frames of the origin this script came from are touched, and only messages from those
// frames' windows on that origin are believed. Safe to include twice and with many frames.
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || !me.src || !window.URL || !window.postMessage) {
    return;
  }
  var origin;
  try {
    origin = new URL(me.src).origin;
  } catch (e) {
    return;
  }
  var CARRIED = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid"];
  var MAX_VALUE = 500;
  var MIN_HEIGHT = 100;
  var MAX_HEIGHT = 20000;
  var MARK = "data-leadgate-ready";

  // What this page knows of the visit, for the form's hidden fields. Sent with the
  // greeting rather than added to the frame's URL: no second load of the frame, and no
  // race with a frame that started loading before this (async) script ran.
  function attribution() {
    var here = new URLSearchParams(location.search);
    var found = {};
    for (var i = 0; i < CARRIED.length; i++) {
      var value = here.get(CARRIED[i]);
      if (value) {
        found[CARRIED[i]] = value.slice(0, MAX_VALUE);
      }
    }
    // Our own pages (the admin preview) are no referrer worth keeping.
    var ref = document.referrer;
    if (ref && ref.indexOf(origin + "/") !== 0) {
      found.referrer = ref.slice(0, MAX_VALUE);
    }
    return found;
  }

  function ours(frame) {
    try {
      return new URL(frame.getAttribute("src") || "", location.href).origin === origin;
    } catch (e) {
      return false;
    }
  }

  function hello(frame) {
    if (frame.contentWindow) {
      frame.contentWindow.postMessage({ type: "leadgate:hello", attribution: attribution() }, origin);
    }
  }

  function adopt(frame) {
    frame.setAttribute(MARK, "");
    window.addEventListener("message", function (event) {
      if (event.origin !== origin || event.source !== frame.contentWindow) {
        return;
      }
      var data = event.data;
      if (!data || data.type !== "leadgate:height") {
        return;
      }
      var h = data.height;
      if (typeof h === "number" && isFinite(h) && h >= MIN_HEIGHT && h <= MAX_HEIGHT) {
        frame.style.height = Math.ceil(h) + "px";
      }
    });
    // Every load is a new document in the frame (a reload, an error page): greet it again.
    frame.addEventListener("load", function () {
      hello(frame);
    });
    // The frame may have loaded before this (async) script ran.
    hello(frame);
  }

  function scan() {
    var frames = document.querySelectorAll("iframe[data-leadgate-embed]");
    for (var i = 0; i < frames.length; i++) {
      if (!frames[i].hasAttribute(MARK) && ours(frames[i])) {
        adopt(frames[i]);
      }
    }
  }

  scan();
  // Snippets further down the page may not be parsed yet.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", scan);
  }
})();
