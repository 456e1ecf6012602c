// An export's page: ask for its progress every second while it runs; reload when it ends
// (the page then shows the download link or the reason it failed).
(function () {
  "use strict";
  var box = document.getElementById("export-job");
  if (!box) { return; }
  var status = box.getAttribute("data-status");
  if (status !== "queued" && status !== "running") { return; }
  var url = box.getAttribute("data-progress-url");
  var bar = document.getElementById("export-progress");
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (job) {
        if (!job) { return; }
        if (job.status !== "queued" && job.status !== "running") { window.location.reload(); return; }
        bar.max = Math.max(job.rows_total, 1);
        bar.value = job.rows_done;
        bar.textContent = String(job.rows_done);
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 500);
})();
