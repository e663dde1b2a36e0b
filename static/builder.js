/* gridflow form builder: drag a field onto another to move it there (desktop); phones use ↑ ↓. */
(function () {
  "use strict";
  var dragged = null;
  document.addEventListener("dragstart", function (e) {
    var row = e.target.closest && e.target.closest(".b-row");
    if (!row) return;
    dragged = row;
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", row.dataset.path);
    row.classList.add("dragging");
  });
  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
  });
  function target(e) {
    var row = e.target.closest && e.target.closest(".b-row");
    if (!row || !dragged || row === dragged) return null;
    if (row.parentElement !== dragged.parentElement) return null;
    return row;
  }
  document.addEventListener("dragover", function (e) {
    if (target(e)) { e.preventDefault(); e.dataTransfer.dropEffect = "move"; }
  });
  document.addEventListener("drop", function (e) {
    var row = target(e);
    if (!row) return;
    e.preventDefault();
    var builder = document.getElementById("builder");
    htmx.ajax("POST", builder.dataset.move, {
      target: "#builder", swap: "outerHTML",
      values: {path: dragged.dataset.path, to: row.dataset.index, _rev: builder.dataset.rev}
    });
  });
})();
