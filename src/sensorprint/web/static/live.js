// The live parts of sensorprint's pages: a job's progress by server-sent events, and chart bars.
// Everything shown is set as text (textContent), never as HTML.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".bar[data-width]").forEach(function (bar) {
    bar.style.width = bar.getAttribute("data-width") + "%";
  });
  var job = document.getElementById("job");
  if (!job) { return; }
  var source = new EventSource(job.getAttribute("data-events"));
  source.onmessage = function (event) {
    var data = JSON.parse(event.data);
    document.getElementById("job-state").textContent = data.state;
    var phases = document.getElementById("phases");
    phases.textContent = "";
    data.phases.forEach(function (p) {
      var row = document.createElement("div");
      row.className = "phase";
      row.textContent = p.phase + ": " + p.done + " / " + p.total;
      var meter = document.createElement("progress");
      meter.max = Math.max(p.total, 1);
      meter.value = p.done;
      row.appendChild(meter);
      phases.appendChild(row);
    });
    var lines = data.lines.filter(function (l) { return l.indexOf("/reports/") !== 0; });
    document.getElementById("job-lines").textContent = lines.join("\n");
    document.getElementById("job-error").textContent = data.error || "";
    var report = data.lines.filter(function (l) { return /^\/reports\/report\.[a-z]+$/.test(l); })[0];
    if (report) {
      var link = document.createElement("a");
      link.href = report;
      link.textContent = "open the report";
      link.id = "report-link";
      document.getElementById("job-link").appendChild(link);
    }
    if (data.state !== "running") { source.close(); }
  };
});
