// Roster console: the audit log's live tail (server-sent events relayed by
// /audit/stream). Everything else is plain forms and htmx.
(function () {
  "use strict";
  function cell(tr, text, code) {
    var td = document.createElement("td");
    if (code) {
      var c = document.createElement("code");
      c.textContent = text;
      td.appendChild(c);
    } else {
      td.textContent = text;
    }
    tr.appendChild(td);
  }
  function startTail() {
    var table = document.getElementById("live");
    if (!table || !window.EventSource) return;
    var rows = document.getElementById("live-rows");
    var status = document.getElementById("live-status");
    var es = new EventSource(table.getAttribute("data-stream"));
    es.onopen = function () { status.textContent = "listening"; table.setAttribute("data-live", "open"); };
    es.onerror = function () { status.textContent = "reconnecting…"; };
    function onRecord(ev) {
      var r;
      try { r = JSON.parse(ev.data); } catch (e) { return; }
      var empty = rows.querySelector("tr.empty");
      if (empty) empty.remove();
      var tr = document.createElement("tr");
      tr.className = "fresh";
      tr.setAttribute("data-action", r.action || "");
      cell(tr, (r.time || "").replace("T", " ").replace(/\.\d+Z$|Z$/, ""));
      cell(tr, r.action || "", true);
      cell(tr, ((r.actor && r.actor.type) || "") + " " + ((r.actor && r.actor.id) || ""));
      cell(tr, ((r.target && r.target.type) || "") + " " + ((r.target && r.target.id) || ""));
      rows.insertBefore(tr, rows.firstChild);
    }
    // /audit/stream relays the records as unnamed events ("message").
    es.onmessage = onRecord;
  }
  document.addEventListener("DOMContentLoaded", startTail);
})();
