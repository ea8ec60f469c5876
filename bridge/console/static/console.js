// The ops console's only script (the Content-Security-Policy allows no inline script).
//
// An order page that can still change has <body data-refresh="N" data-watch="URL"
// data-fingerprint="F">: every N seconds it asks URL (the order's state and a
// fingerprint of its timeline, a cheap call) and reloads when the fingerprint differs —
// unless the operator is typing, has a field filled in, or has opened a details
// section: reading and writing are never interrupted.
(function () {
  "use strict";
  var body = document.body;
  var seconds = parseInt(body.getAttribute("data-refresh") || "0", 10);
  var watch = body.getAttribute("data-watch");
  var known = body.getAttribute("data-fingerprint");
  if (!(seconds > 0) || !watch) { return; }
  function busy() {
    var active = document.activeElement;
    if (active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) { return true; }
    var fields = document.querySelectorAll("textarea, input[type=text], input[type=search]");
    for (var i = 0; i < fields.length; i++) { if (fields[i].value) { return true; } }
    return document.querySelector("details[open]") !== null;
  }
  function check() {
    if (document.visibilityState === "hidden") { return; }
    fetch(watch, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (order) {
        if (order && order.fingerprint !== known && !busy()) { window.location.reload(); }
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }
  window.setInterval(check, seconds * 1000);
}());
