// The admin page's "Copy snippet" buttons: the clipboard API where the browser allows it
// (secure contexts), else selecting the text and the older copy command; either way the
// text stays selected so a manual Ctrl+C still works.
(function () {
  "use strict";
  function done(button, ok) {
    var status = button.nextElementSibling;
    if (status && status.className === "copied") {
      // The words come from the button, in the page's language.
      status.textContent = button.getAttribute(ok ? "data-copied" : "data-copy-by-hand") || "";
    }
  }

  function fallback(button, box) {
    box.focus();
    box.select();
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    done(button, ok);
  }

  function copy(button) {
    var box = document.getElementById(button.getAttribute("data-copy"));
    if (!box) {
      return;
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(box.value).then(
        function () {
          box.select();
          done(button, true);
        },
        function () {
          fallback(button, box);
        }
      );
    } else {
      fallback(button, box);
    }
  }

  var buttons = document.querySelectorAll("button[data-copy]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", function (event) {
      copy(event.currentTarget);
    });
  }
})();
