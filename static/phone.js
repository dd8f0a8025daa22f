// Keeps the phone hint's example in step with the chosen country. Optional: without it
// the example shown is the one for the country the page was served with.
(function () {
  "use strict";
  var select = document.getElementById("phone_country");
  var example = document.getElementById("phone-example");
  if (!select || !example) {
    return;
  }
  select.addEventListener("change", function () {
    var option = select.options[select.selectedIndex];
    example.textContent = (option && option.getAttribute("data-example")) || "";
  });
})();
