// The console's only script: no build step, nothing fetched from elsewhere.
// It refreshes a page's live part, loads a call's transcript, and asks before
// changes that cannot be undone. Every page works without it.
(function () {
  "use strict";
  var REFRESH_MS = 5000;

  function refresh(live) {
    var url = live.getAttribute("data-refresh");
    if (!url) return;
    setInterval(function () {
      if (document.hidden) return;
      // Never swap the part an operator is typing in.
      var active = document.activeElement;
      if (active && live.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) return;
      fetch(url, { credentials: "same-origin", redirect: "follow" }).then(function (r) {
        if (r.redirected || r.status === 401 || r.status === 403) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      }).then(function (html) {
        if (html !== null && html !== undefined && html !== live.getAttribute("data-shown")) {
          live.innerHTML = html;
          live.setAttribute("data-shown", html);
        }
      }).catch(function () { /* the next tick tries again */ });
    }, REFRESH_MS);
  }

  function load(el) {
    fetch(el.getAttribute("data-load"), { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) { if (html) el.innerHTML = html; }).catch(function () {});
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (live) refresh(live);
    Array.prototype.forEach.call(document.querySelectorAll("[data-load]"), load);
  });
})();
