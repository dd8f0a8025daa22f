// The pending result page's status check: polls the attempt's status URL (from the page's
// data-status-url) less and less often, and reloads the page once the payment is no longer
// pending. Without scripts the page's "check again" link does the same by hand.
(function () {
  "use strict";
  var root = document.querySelector("[data-status-url]");
  if (!root || !window.fetch) {
    return;
  }
  var url = root.getAttribute("data-status-url");
  var FIRST_MS = 5000;
  var LONGEST_MS = 30000;
  // After this the customer has the link; a forgotten tab stops asking.
  var GIVE_UP_MS = 10 * 60 * 1000;
  var started = Date.now();
  var delay = FIRST_MS;

  function later(ms) {
    if (Date.now() - started + ms > GIVE_UP_MS) {
      return;
    }
    window.setTimeout(check, ms);
  }

  function next() {
    var wait = delay;
    delay = Math.min(Math.round(delay * 1.5), LONGEST_MS);
    return wait;
  }

  function check() {
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin" })
      .then(function (res) {
        if (res.status === 429 || res.status === 503) {
          // The server says when to come back; never sooner than the current step.
          var secs = parseInt(res.headers.get("Retry-After") || "", 10);
          later(Math.max(next(), isNaN(secs) ? 0 : secs * 1000));
          return null;
        }
        if (!res.ok) {
          // Unknown attempt: nothing will change by asking again.
          return null;
        }
        return res.json().then(function (body) {
          if (body && body.status && body.status !== "pending") {
            window.location.reload();
          } else {
            later(next());
          }
        });
      })
      .catch(function () {
        later(next());
      });
  }

  later(next());
})();
