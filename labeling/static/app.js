// Keyboard shortcuts for the review loop (a = accept all, n = next, e = escalate) and
// small conveniences. No inline script anywhere: the Content-Security-Policy forbids it.
(function () {
  "use strict";

  function typing(target) {
    if (!target) return false;
    var tag = (target.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    var form = document.getElementById("decide-form");
    var accept = document.getElementById("accept-btn");
    var hint = document.getElementById("dirty-hint");
    var submitting = false;

    if (form) {
      // "Accept all" accepts the suggestion as shown; once a label is edited, use "Save changes".
      form.addEventListener("change", function (event) {
        if (event.target && event.target.name === "note") return;
        if (accept) accept.disabled = true;
        if (hint) hint.hidden = false;
      });
      form.addEventListener("submit", function (event) {
        if (submitting) { event.preventDefault(); return; }
        submitting = true;
      });
    }

    document.querySelectorAll("[data-back]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        if (window.history.length > 1) { event.preventDefault(); window.history.back(); }
      });
    });

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
      var key = event.key;
      if (key === "a" && accept && !accept.disabled && form) {
        event.preventDefault();
        form.requestSubmit(accept);
      } else if (key === "e") {
        var escalate = document.getElementById("escalate-btn");
        if (escalate && form) { event.preventDefault(); form.requestSubmit(escalate); }
      } else if (key === "n") {
        var next = document.getElementById("next-link") || document.getElementById("start-next");
        if (next) { event.preventDefault(); window.location.assign(next.href); }
      }
    });
  });
})();
