// leadstage web workspace: small progressive enhancements over server-rendered pages (htmx does the rest).
// No inline scripts anywhere: the pages' Content-Security-Policy allows scripts from this server only.
(function () {
  "use strict";

  function csrfToken() {
    var headers = document.body.getAttribute("hx-headers");
    try { return headers ? JSON.parse(headers)["X-CSRF-Token"] : ""; } catch (e) { return ""; }
  }

  // Dismiss a message; "go back" buttons on error pages.
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    if (target.matches("[data-dismiss]")) {
      var box = target.closest(".flash");
      if (box) box.remove();
    }
    if (target.matches("[data-back]")) {
      history.back();
    }
  });

  // "Select all" for bulk actions: a checkbox with data-select-all="NAME" ticks every checkbox named NAME.
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLInputElement) || !target.dataset.selectAll) return;
    document.querySelectorAll('input[type="checkbox"][name="' + target.dataset.selectAll + '"]').forEach(function (box) {
      box.checked = target.checked;
    });
  });

  // Countdowns: <span class="countdown" data-deadline="ISO"> shows the time left (or overdue), every 30 s.
  function words(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
    if (days) return days + " d " + hours + " h";
    if (hours) return hours + " h " + mins + " min";
    return mins + " min";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = Date.parse(el.dataset.deadline) - now;
      if (isNaN(left)) return;
      el.textContent = left >= 0 ? words(left) + " left" : "overdue by " + words(left);
      el.classList.toggle("overdue", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 3600000);
    });
  }
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);
  setInterval(tick, 30000);

  // Pipeline board: drag a card onto another stage's column; the server runs the transition (or explains
  // why not). Cards also carry a keyboard-friendly "move to" form, which this submits the same way.
  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    var card = event.target instanceof Element ? event.target.closest(".lead-card[draggable]") : null;
    if (!card) return;
    dragged = card;
    card.setAttribute("aria-grabbed", "true");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.leadId || "");
  });
  document.addEventListener("dragend", function () {
    if (dragged) dragged.removeAttribute("aria-grabbed");
    dragged = null;
    document.querySelectorAll(".column.drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
  });
  document.addEventListener("dragover", function (event) {
    var column = event.target instanceof Element ? event.target.closest(".column[data-stage]") : null;
    if (!column || !dragged) return;
    event.preventDefault();
    column.classList.add("drop-target");
  });
  document.addEventListener("dragleave", function (event) {
    var column = event.target instanceof Element ? event.target.closest(".column[data-stage]") : null;
    if (column && !column.contains(event.relatedTarget)) column.classList.remove("drop-target");
  });
  document.addEventListener("drop", function (event) {
    var column = event.target instanceof Element ? event.target.closest(".column[data-stage]") : null;
    if (!column || !dragged) return;
    event.preventDefault();
    column.classList.remove("drop-target");
    if (column.dataset.stage === dragged.dataset.stage) return;
    var form = dragged.querySelector("form.move");
    if (!form || !window.htmx) return;
    var select = form.querySelector("select[name=to]");
    if (select) select.value = column.dataset.stage;
    form.requestSubmit();
  });

  // A refused move leaves the card where it was: its "move to" control shows its own stage again.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target instanceof Element ? event.target.closest("form.move") : null;
    var xhr = event.detail && event.detail.xhr;
    if (!form || !xhr || !xhr.getResponseHeader("X-Error-Status")) return;
    var card = form.closest(".lead-card");
    var select = form.querySelector("select[name=to]");
    if (card && select) select.value = card.dataset.stage;
  });

  window.leadstage = { csrfToken: csrfToken };
})();
