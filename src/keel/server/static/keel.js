/* Charts of keel server's pages: each <canvas data-chart="ID"> is drawn by
   Chart.js from the description under ID in the page's JSON block
   (#keel-charts, written by keel.server.ui.charts). A canvas gets
   data-drawn="1" once Chart.js has rendered it. */
(function () {
  "use strict";
  var block = document.getElementById("keel-charts");
  if (!block || typeof Chart === "undefined") { return; }
  var specs = JSON.parse(block.textContent);
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  // Drawn once: with 40 charts on a page, animations only delay it.
  Chart.defaults.animation = false;
  Chart.defaults.font.size = 11;
  Chart.defaults.maintainAspectRatio = false;

  var drawn = {id: "keelDrawn", afterRender: function (chart) { chart.canvas.dataset.drawn = "1"; }};

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function utc(ms) {
    var d = new Date(ms);
    return pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }
  function pct(v) { return v === null ? "—" : (v * 100).toFixed(1) + "%"; }
  function num(v) { return Number(Number(v).toPrecision(4)).toString(); }
  function color(i) { return PALETTE[i % PALETTE.length]; }

  function axisTitle(text) { return {display: Boolean(text), text: text || ""}; }

  // Times are epoch ms on a linear axis (Chart.js's time axis needs a date
  // adapter, another library), spanning the data, ticked on whole UTC minutes,
  // hours or days rather than the linear axis's own steps.
  var STEPS = [1, 5, 15, 30, 60, 180, 360, 720, 1440, 2880, 10080].map(function (m) { return m * 60000; });
  function timeAxis(spec) {
    var times = [];
    spec.series.forEach(function (s) { s.points.forEach(function (p) { times.push(p[0]); }); });
    if (!times.length) { return {type: "linear"}; }
    var lo = Math.min.apply(null, times), hi = Math.max.apply(null, times);
    if (lo === hi) { lo -= 1800000; hi += 1800000; }
    var step = STEPS.filter(function (s) { return (hi - lo) / s <= 8; })[0] || (hi - lo) / 8;
    var margin = (hi - lo) * 0.03;  // the first and last points whole, not cut by the edge
    lo -= margin; hi += margin;
    return {
      type: "linear", min: lo, max: hi,
      afterBuildTicks: function (axis) {
        var ticks = [];
        for (var t = Math.ceil(lo / step) * step; t <= hi; t += step) { ticks.push({value: t}); }
        axis.ticks = ticks;
      },
      ticks: {callback: function (v) { return utc(v); }}
    };
  }

  function lineConfig(spec) {
    var x = spec.x === "time" ? timeAxis(spec) : {type: "linear"};
    x.title = axisTitle(spec.xTitle);
    if (spec.x === "step") { x.ticks = {precision: 0}; }
    var y = {title: axisTitle(spec.yTitle)};
    if (spec.percent) { y.ticks = {callback: function (v) { return pct(v); }}; y.beginAtZero = true; }
    var many = spec.series.some(function (s) { return s.points.length > 200; });
    return {
      type: "line",
      data: {datasets: spec.series.map(function (s, i) {
        return {label: s.label, borderColor: color(i), backgroundColor: color(i),
                borderWidth: 1.5, pointRadius: many ? 0 : 2, spanGaps: false,
                data: s.points.map(function (p) { return {x: p[0], y: p[1]}; })};
      })},
      options: {
        parsing: false, normalized: true, scales: {x: x, y: y},
        plugins: {
          legend: {display: spec.series.length > 1, labels: {boxWidth: 10}},
          tooltip: {callbacks: {
            title: function (items) {
              if (!items.length) { return ""; }
              var v = items[0].parsed.x;
              return spec.x === "time" ? utc(v) + " UTC" : spec.xTitle + " " + v;
            },
            label: function (c) {
              return c.dataset.label + ": " + (spec.percent ? pct(c.parsed.y) : num(c.parsed.y));
            }
          }}
        }
      }
    };
  }

  function barConfig(spec) {
    return {
      type: "bar",
      data: {labels: spec.labels, datasets: spec.series.map(function (s, i) {
        return {label: s.label, data: s.values, backgroundColor: color(i)};
      })},
      options: {
        scales: {x: {stacked: spec.stacked, title: axisTitle(spec.xTitle),
                     ticks: {maxRotation: 45, autoSkip: true}},
                 y: {stacked: spec.stacked, beginAtZero: true, title: axisTitle(spec.yTitle)}},
        plugins: {legend: {display: spec.series.length > 1, labels: {boxWidth: 10}}}
      }
    };
  }

  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var spec = specs[canvas.dataset.chart];
    if (!spec) { return; }
    var config = spec.type === "bar" ? barConfig(spec) : lineConfig(spec);
    config.plugins = [drawn];
    try {
      new Chart(canvas, config);
    } catch (err) {
      console.error("keel: cannot draw chart " + canvas.dataset.chart, err);
    }
  });
})();
