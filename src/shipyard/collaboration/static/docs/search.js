// shipyard docs: search over the index in search-index.js, in the browser, with no network.
// Every word typed must appear in an entry's title, kind or words; title matches rank first.
// A page opened with ?q=WORDS shows the results for those words at once.
(function () {
  "use strict";
  var index = window.SHIPYARD_SEARCH_INDEX || [];
  var root = document.body.getAttribute("data-root") || "";
  var form = document.getElementById("search-form");
  var input = document.getElementById("search-input");
  var panel = document.getElementById("search-results");
  var LIMIT = 25;
  if (!form || !input || !panel) {
    return;
  }
  var entries = index.map(function (e) {
    return { entry: e, title: e.t.toLowerCase(), text: (e.t + " " + e.k + " " + e.x).toLowerCase() };
  });

  function search(query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) {
      return [];
    }
    var found = [];
    entries.forEach(function (item, position) {
      var all = words.every(function (w) { return item.text.indexOf(w) !== -1; });
      if (!all) {
        return;
      }
      var score = 0;
      words.forEach(function (w) {
        if (item.title === w) { score += 4; } else if (item.title.indexOf(w) !== -1) { score += 2; }
      });
      found.push({ entry: item.entry, score: score, position: position });
    });
    found.sort(function (a, b) { return b.score - a.score || a.position - b.position; });
    return found.slice(0, LIMIT).map(function (f) { return f.entry; });
  }

  function show(query) {
    while (panel.firstChild) {
      panel.removeChild(panel.firstChild);
    }
    if (!query.trim()) {
      panel.hidden = true;
      return [];
    }
    var results = search(query);
    if (!results.length) {
      var empty = document.createElement("p");
      empty.className = "empty";
      empty.textContent = "Nothing matches \u201c" + query + "\u201d.";
      panel.appendChild(empty);
    } else {
      var list = document.createElement("ol");
      results.forEach(function (e) {
        var item = document.createElement("li");
        var link = document.createElement("a");
        link.href = root + e.u;
        link.className = "result";
        var kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = e.k;
        link.appendChild(kind);
        link.appendChild(document.createTextNode(e.t));
        item.appendChild(link);
        list.appendChild(item);
      });
      panel.appendChild(list);
    }
    panel.hidden = false;
    return results;
  }

  input.addEventListener("input", function () { show(input.value); });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      input.value = "";
      show("");
    }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var results = show(input.value);
    if (results.length) {
      window.location.href = root + results[0].u;
    }
  });
  var initial = new URLSearchParams(window.location.search).get("q");
  if (initial) {
    input.value = initial;
    show(initial);
  }
})();
