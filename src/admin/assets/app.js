// Live rows for the operator page. Every value goes in with textContent, never as HTML.
(function () {
  "use strict";
  var rows = document.getElementById("rows");
  var note = document.getElementById("live");
  if (!rows || !window.EventSource) return;
  var max = 500;
  var source = new EventSource(rows.getAttribute("data-stream"));
  function cell(tr, text, href, cls) {
    var td = document.createElement("td");
    var el = td;
    if (href) { el = document.createElement("a"); el.href = href; td.appendChild(el); }
    if (cls) { el = document.createElement("span"); el.className = cls; td.appendChild(el); }
    el.textContent = text == null ? "" : String(text);
    tr.appendChild(td);
  }
  function time(t) { return t.replace("T", " ").replace("Z", ""); }
  source.addEventListener("delivery", function (e) {
    var r = JSON.parse(e.data);
    var tr = document.createElement("tr");
    tr.setAttribute("data-outcome", r.outcome);
    cell(tr, r.id, "/deliveries/" + encodeURIComponent(r.id));
    cell(tr, time(r.received_at));
    cell(tr, r.hook);
    cell(tr, r.provider);
    cell(tr, r.client);
    cell(tr, r.outcome, null, "outcome " + r.outcome);
    cell(tr, r.reason);
    cell(tr, r.size);
    cell(tr, r.event);
    cell(tr, r.delivery_id);
    cell(tr, r.event_id);
    cell(tr, r.latency_ms.toFixed(1));
    rows.insertBefore(tr, rows.firstChild);
    while (rows.children.length > max) rows.removeChild(rows.lastChild);
    var empty = document.getElementById("empty");
    if (empty) empty.remove();
  });
  source.addEventListener("lagged", function (e) {
    note.textContent = "Skipped " + JSON.parse(e.data).skipped +
      " deliveries (this page fell behind); reload to see every kept one.";
  });
  source.onopen = function () { if (!note.textContent.startsWith("Skipped")) note.textContent = "live"; };
  source.onerror = function () { note.textContent = "reconnecting…"; };
})();
