// shipyard web UI: draws the charts of a page and sends the CSRF token with every htmx
// request. Loaded as a file (the Content-Security-Policy allows no inline script).
(function () {
  "use strict";

  function drawCharts(root) {
    if (typeof Plotly === "undefined") return;
    root.querySelectorAll(".chart[data-figure]:not([data-drawn])").forEach(function (el) {
      var fig = JSON.parse(el.getAttribute("data-figure"));
      var layout = Object.assign(
        { margin: { l: 50, r: 20, t: 40, b: 40 }, height: 300, font: { size: 12 } },
        fig.layout || {}
      );
      el.setAttribute("data-drawn", "1");
      Plotly.newPlot(el, fig.data || [], layout, { displaylogo: false, responsive: true });
    });
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // -- runs table: picking runs to compare (the table part is swapped by htmx, so the
  // -- listener sits on the body and the count is redone after every swap) ----------------
  function updatePicked() {
    var counter = document.getElementById("picked-count");
    if (!counter) return;
    var max = parseInt(counter.getAttribute("data-max"), 10);
    var n = document.querySelectorAll(".run-pick:checked").length;
    var button = document.getElementById("compare-selected");
    if (n === 0) counter.textContent = "pick 2 to " + max + " runs on this page";
    else if (n < 2) counter.textContent = "1 run picked: pick at least one more";
    else if (n > max) counter.textContent = n + " runs picked: a comparison holds at most " + max;
    else counter.textContent = n + " runs picked";
    if (button) button.disabled = n < 2 || n > max;
  }
  // -- end of the runs table block ----------------------------------------------------------

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    updatePicked();
    document.body.addEventListener("change", function (evt) {
      if (evt.target.classList && evt.target.classList.contains("run-pick")) updatePicked();
    });
    document.body.addEventListener("htmx:configRequest", function (evt) {
      evt.detail.headers["X-CSRF-Token"] = csrfToken();
    });
    document.body.addEventListener("htmx:afterSwap", function (evt) {
      drawCharts(evt.detail.elt);
      updatePicked();
    });
    // A form with data-error-target shows a refusal (4xx: the service's message) in that
    // element of the form instead of leaving the page unchanged.
    document.body.addEventListener("htmx:beforeSwap", function (evt) {
      var status = evt.detail.xhr.status;
      // detail.elt is the swap target; the element that sent the request is requestConfig.elt
      var sender = evt.detail.requestConfig && evt.detail.requestConfig.elt;
      var form = sender && sender.closest ? sender.closest("[data-error-target]") : null;
      if (status < 400 || status >= 500 || !form) return;
      var slot = form.querySelector(form.getAttribute("data-error-target"));
      if (!slot) return;
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
      evt.detail.target = slot;
    });
    // Forms that ask before they act (promote, rollback, reject).
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (evt) {
        if (!window.confirm(form.getAttribute("data-confirm"))) evt.preventDefault();
      });
    });
  });
})();
