// Inside a framed offer form (`?embed=1`): tells the framing page how tall the form is, so
// embed.js can size the frame. It answers only a parent that greeted it (leadgate:hello)
// from an origin the offer allows (the body's data-embed-origins, plus our own origin for
// the admin preview), and only to that origin, never to any window that asks.
(function () {
  "use strict";
  if (window.parent === window || !window.postMessage) {
    return;
  }
  var root = document.documentElement;
  var listed = (document.body && document.body.getAttribute("data-embed-origins")) || "";
  var allowed = listed.split(" ").filter(function (o) {
    return o !== "";
  });
  allowed.push(location.origin);
  var parentOrigin = null;
  var last = 0;
  var timer = null;

  // The document's own height: scrollHeight never drops below the frame's height, so a
  // frame sized too tall could never shrink back.
  function height() {
    return Math.ceil(root.getBoundingClientRect().height);
  }

  function report() {
    timer = null;
    var h = height();
    if (parentOrigin === null || h === last) {
      return;
    }
    last = h;
    window.parent.postMessage({ type: "leadgate:height", height: h }, parentOrigin);
  }

  // At most one report per 100 ms however fast the layout changes.
  function soon() {
    if (timer === null) {
      timer = setTimeout(report, 100);
    }
  }

  var CARRIED = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid", "referrer"];

  // The framing page's attribution into the form's hidden fields. Values the form already
  // has (from the snippet's URL) stay, except the referrer: the frame's own is the framing
  // page, the framing page's is where the visitor came from.
  function carry(found) {
    var form = document.querySelector("form[method=post]");
    if (!form || !found || typeof found !== "object") {
      return;
    }
    for (var i = 0; i < CARRIED.length; i++) {
      var name = CARRIED[i];
      var value = found[name];
      if (typeof value !== "string" || value === "") {
        continue;
      }
      var input = form.querySelector('input[type="hidden"][name="' + name + '"]');
      if (!input) {
        input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        form.appendChild(input);
      } else if (name !== "referrer") {
        continue;
      }
      input.value = value.slice(0, 500);
    }
  }

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent || allowed.indexOf(event.origin) < 0) {
      return;
    }
    if (!event.data || event.data.type !== "leadgate:hello") {
      return;
    }
    parentOrigin = event.origin;
    carry(event.data.attribution);
    last = 0;
    soon();
  });
  window.addEventListener("load", soon);
  window.addEventListener("resize", soon);
  if (window.ResizeObserver) {
    new ResizeObserver(soon).observe(root);
  }
})();
