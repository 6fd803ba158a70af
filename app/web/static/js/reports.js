/* Console 报表: charts drawn from the same figures as the tables (vendored ECharts). */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  if (!window.echarts) return;
  var charts = [];
  function draw(id, option) {
    var el = document.getElementById(id);
    if (!el) return;
    var chart = echarts.init(el);
    chart.setOption(option);
    charts.push(chart);
  }
  function pct(v) { return v == null ? null : Math.round(v * 1000) / 10; }
  var grid = { left: 8, right: 12, top: 36, bottom: 8, containLabel: true };

  draw("chart-period", {
    grid: grid, tooltip: { trigger: "axis" },
    xAxis: { type: "category", data: data.by_period.map(function (r) { return r.period; }) },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ name: "工单", type: "line", smooth: true, areaStyle: { opacity: 0.15 }, itemStyle: { color: "#c0392b" },
               data: data.by_period.map(function (r) { return r.count; }) }]
  });
  draw("chart-types", {
    grid: grid, tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    xAxis: { type: "category", data: data.by_type.map(function (r) { return r.type; }), axisLabel: { interval: 0 } },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ type: "bar", barMaxWidth: 36, itemStyle: { color: "#1a5fb4" }, label: { show: true, position: "top" },
               data: data.by_type.map(function (r) { return r.count; }) }]
  });
  draw("chart-stars", {
    tooltip: { trigger: "item", formatter: "{b}：{c}（{d}%）" },
    series: [{ type: "pie", radius: ["35%", "65%"],
               data: data.stars.map(function (r) { return { name: r.stars + "分", value: r.count }; }) }]
  });
  function rateBars(rows, series) {
    return {
      grid: grid, tooltip: { trigger: "axis", valueFormatter: function (v) { return v == null ? "—" : v + "%"; } },
      legend: { top: 0, data: series.map(function (s) { return s[0]; }) },
      xAxis: { type: "category", data: rows.map(function (r) { return r.name; }), axisLabel: { interval: 0, rotate: rows.length > 6 ? 30 : 0 } },
      yAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
      series: series.map(function (s) {
        return { name: s[0], type: "bar", barMaxWidth: 28, data: rows.map(function (r) { return pct(r[s[1]]); }) };
      })
    };
  }
  draw("chart-crews", rateBars(data.crews, [["响应及时率", "response_on_time_rate"], ["办结及时率", "finish_on_time_rate"],
                                            ["满意率", "satisfied_rate"]]));
  draw("chart-agents", rateBars(data.agents, [["满意率", "all_satisfied_rate"], ["办结及时率", "finish_on_time_rate"]]));
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
