// The ops console's only script (the Content-Security-Policy allows no inline script).
// A page whose <body> has data-refresh="N" reloads itself every N seconds while the
// order can still change, unless the operator is typing, has a field filled in, or has
// opened a details section: reading and writing are never interrupted.
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!(seconds > 0)) { return; }
  function busy() {
    var active = document.activeElement;
    if (active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) { return true; }
    var fields = document.querySelectorAll("textarea, input[type=text], input[type=search]");
    for (var i = 0; i < fields.length; i++) { if (fields[i].value) { return true; } }
    return document.querySelector("details[open]") !== null;
  }
  window.setInterval(function () {
    if (!busy() && document.visibilityState !== "hidden") { window.location.reload(); }
  }, seconds * 1000);
}());
