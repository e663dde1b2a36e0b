// Draws the dashboard's charts from the figures embedded in the page (the tables beside them hold the same numbers).
(function () {
  "use strict";

  function percent(v) { return v === null || v === undefined ? null : Math.round(v * 1000) / 10; }

  function chart(id, option) {
    var el = document.getElementById(id);
    if (!el || !window.echarts) return null;
    var c = window.echarts.init(el, null, { renderer: "svg" });
    c.setOption(option);
    window.addEventListener("resize", function () { c.resize(); });
    return c;
  }

  function draw() {
    var node = document.getElementById("board-data");
    if (!node) return;
    var b = JSON.parse(node.textContent);
    var words = JSON.parse(document.getElementById("board-labels").textContent);
    var R = words.reported, C = words.closed, RATE = words.closure_rate;
    var small = window.matchMedia("(max-width: 600px)").matches;
    var grid = { left: 48, right: 48, top: 36, bottom: 40, containLabel: true };
    chart("chart-trend", {
      tooltip: { trigger: "axis" },
      legend: { data: [R, C, RATE], top: 0 },
      grid: grid,
      xAxis: { type: "category", data: b.trend.map(function (r) { return r.at; }) },
      yAxis: [{ type: "value", name: words.cases }, { type: "value", name: "%", max: 100, min: 0 }],
      series: [
        { name: R, type: "bar", data: b.trend.map(function (r) { return r.reported; }) },
        { name: C, type: "bar", data: b.trend.map(function (r) { return r.closed; }) },
        { name: RATE, type: "line", yAxisIndex: 1, data: b.trend.map(function (r) { return percent(r.closure_rate); }) }
      ]
    });
    chart("chart-forms", {
      tooltip: { trigger: "axis" },
      legend: { data: [R, C], top: 0 },
      grid: grid,
      xAxis: { type: "category", data: b.by_form.map(function (r) { return r.title; }),
               axisLabel: { interval: 0, rotate: small ? 30 : 0 } },
      yAxis: { type: "value", name: words.cases },
      series: [
        { name: R, type: "bar", data: b.by_form.map(function (r) { return r.reported; }) },
        { name: C, type: "bar", data: b.by_form.map(function (r) { return r.closed; }) }
      ]
    });
    var ranked = b.by_grid.filter(function (r) { return !r.own && r.closure_rate !== null; })
      .sort(function (a, c) { return a.closure_rate - c.closure_rate; }).slice(-15);
    var el = document.getElementById("chart-grids");
    if (el) el.style.height = Math.max(160, ranked.length * 28 + 60) + "px";
    var c = chart("chart-grids", {
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 8, right: 48, top: 24, bottom: 24, containLabel: true },
      xAxis: { type: "value", max: 100, name: words.rate_axis },
      yAxis: { type: "category", data: ranked.map(function (r) { return r.name; }) },
      series: [{ name: RATE, type: "bar", data: ranked.map(function (r) { return percent(r.closure_rate); }),
                 label: { show: true, position: "right", formatter: "{c}%" } }]
    });
    if (c) {
      c.on("click", function (p) {
        var row = ranked[p.dataIndex];
        var link = row && Array.prototype.find.call(document.querySelectorAll("#table-grids a.drill"),
          function (a) { return a.textContent === row.name; });
        if (link) window.location.href = link.href;
      });
    }
  }

  function periodFields() {
    var select = document.getElementById("period");
    if (!select) return;
    function sync() {
      var custom = select.value === "custom";
      // Hidden inputs are disabled too, so that a stale date is not sent with the other kind of period.
      document.querySelectorAll(".p-custom").forEach(function (e) {
        e.hidden = !custom; e.querySelector("input").disabled = !custom;
      });
      document.querySelectorAll(".p-at").forEach(function (e) {
        e.hidden = custom; e.querySelector("input").disabled = custom;
      });
    }
    select.addEventListener("change", sync);
    sync();
  }

  document.addEventListener("DOMContentLoaded", function () { periodFields(); draw(); });
})();
