/* Leader dashboard: render the summary, keep it live over server-sent events. */
(function () {
  "use strict";
  var cfg = window.DASHBOARD;
  var typeChart = null, districtChart = null;
  var lastByType = [], lastByDistrict = [];

  function get(obj, path) {
    return path.split(".").reduce(function (o, k) { return o == null ? o : o[k]; }, obj);
  }
  function fmt(value, kind) {
    if (kind === "len") return Array.isArray(value) ? value.length : "—";
    if (kind === "linked") {
      return Array.isArray(value) ? value.reduce(function (s, o) { return s + (o.linked_reports || 0); }, 0) : "—";
    }
    if (kind === "households") {
      return Array.isArray(value) ? value.reduce(function (s, o) { return s + (o.households || 0); }, 0) : "—";
    }
    if (value === null || value === undefined) return "—";
    if (kind === "pct") return (value * 100).toFixed(1) + "%";
    if (kind === "yuan") return (value / 100).toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return String(value);
  }
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function listUrl(figure, key) {
    return cfg.list.replace("__F__", encodeURIComponent(figure)).replace("__K__", encodeURIComponent(key));
  }
  function localTime(iso, withDate) {
    if (!iso) return "—";
    var d = new Date(iso);
    var opts = { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hour12: false };
    if (withDate) { opts.month = "2-digit"; opts.day = "2-digit"; }
    return d.toLocaleString("zh-CN", opts);
  }

  function barOption(rows, color) {
    return {
      grid: { left: 8, right: 12, top: 16, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: { type: "category", data: rows.map(function (r) { return r.label; }),
               axisLabel: { interval: 0, rotate: rows.length > 5 ? 30 : 0 } },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ type: "bar", data: rows.map(function (r) { return r.count; }), itemStyle: { color: color },
                 label: { show: true, position: "top" }, barMaxWidth: 36 }]
    };
  }

  function renderCharts(s) {
    if (!window.echarts) return;
    if (!typeChart) {
      typeChart = echarts.init(document.getElementById("chart-type"));
      typeChart.on("click", function (p) {
        var row = lastByType[p.dataIndex]; if (row) location.href = listUrl("type", row.key);
      });
      districtChart = echarts.init(document.getElementById("chart-district"));
      districtChart.on("click", function (p) {
        var row = lastByDistrict[p.dataIndex]; if (row) location.href = listUrl("district", row.key);
      });
      window.addEventListener("resize", function () { typeChart.resize(); districtChart.resize(); });
    }
    lastByType = s.by_type; lastByDistrict = s.by_district;
    typeChart.setOption(barOption(s.by_type, "#c0392b"));
    districtChart.setOption(barOption(s.by_district, "#1a5fb4"));
  }

  function renderOutages(s) {
    var ul = document.getElementById("outage-list");
    if (!s.outages.length) { ul.innerHTML = '<li class="muted">当前没有停热</li>'; return; }
    ul.innerHTML = s.outages.map(function (o) {
      return "<li><strong>" + esc(o.title) + '</strong> <span class="badge warn">' + esc(o.status_label) +
        "</span><div>影响 <strong>" + o.households + "</strong> 户 · 关联报修 <strong>" + (o.linked_reports || 0) +
        '</strong> 起</div><div class="muted small">开始 ' +
        localTime(o.starts_at, true) + " · 预计恢复 " + localTime(o.expected_end_at, true) + "</div></li>";
    }).join("");
  }

  function renderCrews(s) {
    document.getElementById("crew-rows").innerHTML = s.crews.map(function (c) {
      var loc = c.last_location;
      var where = loc ? esc(loc.name) + "：" + esc(loc.location || (loc.latitude + "," + loc.longitude)) +
        ' <span class="muted small">' + localTime(loc.located_at, true) + "</span>" : '<span class="muted">暂无</span>';
      return '<tr><td><a href="' + listUrl("crew", c.id) + '">' + esc(c.name) + "</a></td><td>" + c.open +
        '</td><td class="' + (c.overdue ? "bad" : "") + '">' + c.overdue + "</td><td>" + where + "</td></tr>";
    }).join("");
  }

  function render(s) {
    document.querySelectorAll("[data-fig]").forEach(function (el) {
      var text = fmt(get(s, el.getAttribute("data-fig")), el.getAttribute("data-format"));
      if (el.textContent !== text) {
        el.textContent = text;
      }
    });
    document.getElementById("updated").textContent = new Date(s.generated_at).toLocaleTimeString(
      "zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
    renderCharts(s);
    renderOutages(s);
    renderCrews(s);
  }

  function setLive(on, text) {
    var el = document.getElementById("live");
    el.classList.toggle("on", on);
    document.getElementById("live-text").textContent = text;
  }

  function connect() {
    if (!window.EventSource) { setLive(false, "浏览器不支持实时更新"); return; }
    var es = new EventSource(cfg.stream);
    es.addEventListener("open", function () { setLive(true, "实时"); });
    es.addEventListener("summary", function (e) {
      setLive(true, "实时");
      render(JSON.parse(e.data));
    });
    // The server ends a stream after a while (it holds a thread); EventSource reconnects itself.
    es.addEventListener("bye", function () { setLive(false, "重新连接中"); });
    es.addEventListener("error", function () {
      setLive(false, "重新连接中");
      if (es.readyState === EventSource.CLOSED) { setTimeout(connect, 5000); }
    });
  }

  // WeChat's OAuth fragment survives the redirects: keep the address clean.
  if (location.hash === "#wechat_redirect" && window.history.replaceState) {
    history.replaceState(null, "", location.pathname + location.search);
  }
  render(JSON.parse(document.getElementById("summary-data").textContent));
  connect();
})();
