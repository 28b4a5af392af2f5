// Keyboard shortcuts: j/k move through the queue, a approve, r reject, e edit.
(function () {
  "use strict";
  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT");
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.item"));
  var current = -1;
  function select(i) {
    if (!rows.length) return;
    if (current >= 0) rows[current].classList.remove("current");
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows[current].classList.add("current");
    rows[current].scrollIntoView({block: "nearest"});
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(document.activeElement)) return;
    var k = ev.key;
    if (k === "j") select(current + 1);
    else if (k === "k") select(current - 1);
    else if (k === "Enter" && current >= 0) location.href = rows[current].dataset.href;
    else if (k === "a" && document.getElementById("approve")) document.getElementById("approve").click();
    else if (k === "r" && document.getElementById("reason")) { ev.preventDefault(); document.getElementById("reason").focus(); }
    else if (k === "e" && document.getElementById("text")) { ev.preventDefault(); document.getElementById("text").focus(); }
    else return;
  });
})();
