/* The moderation queue's keyboard: j/k (or the arrows) move the current row, p publish,
   u unpublish, t trash, x select for the bulk actions, Enter opens the entry. Actions are sent
   with fetch (the session's CSRF token in X-CSRF-Token) and the current row moves on.
   Without JavaScript the bulk form and the entry page's buttons do the same. */
(function () {
  "use strict";
  var table = document.getElementById("queue");
  if (!table) { return; }
  var form = document.getElementById("bulk");
  var csrf = form ? form.querySelector("input[name=csrf]").value : "";
  var announce = document.getElementById("announce");
  var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr"));
  var current = -1;
  var ACTIONS = { p: "publish", u: "unpublish", t: "trash" };
  var LABELS = { published: "status-published", unpublished: "status-unpublished", trashed: "status-trashed",
                 pending: "status-pending" };

  function say(text) { if (announce) { announce.textContent = text; } }

  function select(index, focus) {
    if (!rows.length) { return; }
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0 && rows[current]) { rows[current].classList.remove("current"); rows[current].removeAttribute("aria-current"); }
    current = index;
    var row = rows[current];
    row.classList.add("current");
    row.setAttribute("aria-current", "true");
    if (focus !== false) { row.querySelector("a.open").focus(); }
  }

  function typing(target) {
    var name = target && target.tagName;
    return name === "INPUT" && target.type !== "checkbox" || name === "SELECT" || name === "TEXTAREA" || (target && target.isContentEditable);
  }

  function act(action) {
    if (current < 0) { select(0); }
    var row = rows[current];
    var id = row.getAttribute("data-id");
    var body = new URLSearchParams({ action: action });
    return fetch("/console/observations/" + id + "/moderate", {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
    }).then(function (answer) {
      return answer.json().then(function (data) { return { ok: answer.ok, data: data }; });
    }).then(function (result) {
      if (!result.ok) { say(result.data.error || "error"); row.classList.add("refused"); return; }
      var cell = row.querySelector("td.status");
      row.setAttribute("data-status", result.data.status);
      cell.className = "status " + (LABELS[result.data.status] || "");
      cell.textContent = cell.getAttribute("data-label-" + result.data.status) || result.data.status;
      say(result.data.message);
      select(current + 1);
    }).catch(function () { say("error"); });
  }

  rows.forEach(function (row, index) {
    row.addEventListener("click", function (event) {
      if (event.target.tagName !== "INPUT" && event.target.tagName !== "A") { select(index); }
    });
    row.querySelector("a.open").addEventListener("focus", function () { select(index, false); });
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var key = event.key;
    if (key === "j" || key === "ArrowDown") { select(current + 1); event.preventDefault(); }
    else if (key === "k" || key === "ArrowUp") { select(current < 0 ? 0 : current - 1); event.preventDefault(); }
    else if (ACTIONS[key]) { act(ACTIONS[key]); event.preventDefault(); }
    else if (key === "x" && current >= 0) {
      var box = rows[current].querySelector("input[type=checkbox]");
      box.checked = !box.checked; event.preventDefault();
    } else if (key === "Enter" && current >= 0 && document.activeElement.tagName !== "A" && document.activeElement.tagName !== "BUTTON") {
      window.location.href = rows[current].querySelector("a.open").href; event.preventDefault();
    }
  });
})();
