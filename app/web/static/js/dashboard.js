/* Leader dashboard and its control-room (wall) mode: render the summary, keep it live over
   server-sent events. Everything is drawn from one summary object; each page holds only the
   elements it shows, and each renderer skips what is absent. */
(function () {
  "use strict";
  var cfg = window.DASHBOARD;
  var wall = cfg.mode === "wall";
  var charts = {};        // id -> echarts instance
  var spans = { type: "today", district: "today" };
  var last = null;        // the latest summary

  function $(id) { return document.getElementById(id); }
  function get(obj, path) {
    return path.split(".").reduce(function (o, k) { return o == null ? o : o[k]; }, obj);
  }
  function yuan(fen) {
    return (fen / 100).toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function secs(value) {
    if (value < 60) return value + "秒";
    var m = Math.floor(value / 60), s = value % 60;
    return m < 60 ? m + "分" + (s ? s + "秒" : "") : Math.floor(m / 60) + "时" + (m % 60) + "分";
  }
  function sum(list, key) {
    return Array.isArray(list) ? list.reduce(function (s, o) { return s + (o[key] || 0); }, 0) : "—";
  }
  function fmt(value, kind) {
    if (kind === "len") return Array.isArray(value) ? value.length : "—";
    if (kind === "linked") return sum(value, "linked_reports");
    if (kind === "households") return sum(value, "households");
    if (value === null || value === undefined) return "—";
    if (kind === "pct") return (value * 100).toFixed(1) + "%";
    if (kind === "yuan") return yuan(value);
    if (kind === "wan") return (value / 1000000).toLocaleString("zh-CN", { maximumFractionDigits: 1 });
    if (kind === "secs") return secs(value);
    return String(value);
  }
  function delta(now, before, kind) {
    if (now == null || before == null) return "—";
    var d = now - before;
    var text = (d > 0 ? "+" : d < 0 ? "−" : "±") + (kind === "yuan" ? yuan(Math.abs(d)) : Math.abs(d));
    if (before > 0) text += "（" + (d >= 0 ? "+" : "−") + Math.abs(Math.round(d * 100 / before)) + "%）";
    return text;
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
    var opts = { timeZone: cfg.timeZone, hour: "2-digit", minute: "2-digit", hour12: false };
    if (withDate) { opts.month = "2-digit"; opts.day = "2-digit"; }
    return new Date(iso).toLocaleString("zh-CN", opts);
  }

  // --- charts -------------------------------------------------------------------------------
  var INK = wall ? "#dbe4f0" : "#1f2933";
  var FONT = wall ? 22 : 12;
  function axisStyle() {
    return { axisLabel: { color: INK, fontSize: FONT }, axisLine: { lineStyle: { color: wall ? "#5b6b80" : "#ccd" } },
             splitLine: { lineStyle: { color: wall ? "#2a3646" : "#eef" } } };
  }
  function barOption(rows, color) {
    var x = axisStyle(), y = axisStyle();
    x.type = "category"; x.data = rows.map(function (r) { return r.label; });
    x.axisLabel.interval = 0; x.axisLabel.rotate = !wall && rows.length > 5 ? 30 : 0;
    y.type = "value"; y.minInterval = 1;
    return {
      grid: { left: 8, right: 12, top: wall ? 40 : 22, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: x, yAxis: y,
      series: [{ type: "bar", data: rows.map(function (r) { return r.count; }), itemStyle: { color: color },
                 label: { show: true, position: "top", color: INK, fontSize: FONT }, barMaxWidth: wall ? 70 : 36 }]
    };
  }
  function hourlyOption(h) {
    var hours = []; for (var i = 0; i < 24; i++) hours.push(i + "时");
    var nowHour = Number(new Date().toLocaleString("en-GB", { timeZone: cfg.timeZone, hour: "2-digit", hour12: false }));
    var x = axisStyle(), y = axisStyle();
    x.type = "category"; x.data = hours; x.boundaryGap = false;
    y.type = "value"; y.minInterval = 1;
    return {
      grid: { left: 8, right: 16, top: wall ? 56 : 34, bottom: 8, containLabel: true },
      legend: { top: 0, data: ["今日", "昨日"], textStyle: { color: INK, fontSize: FONT } },
      tooltip: { trigger: "axis" },
      xAxis: x, yAxis: y,
      series: [
        { name: "今日", type: "line", smooth: true, data: h.today.slice(0, nowHour + 1), itemStyle: { color: "#e4572e" },
          lineStyle: { width: wall ? 5 : 3 }, areaStyle: { opacity: 0.15 } },
        { name: "昨日", type: "line", smooth: true, data: h.yesterday, itemStyle: { color: "#8a9bb0" },
          lineStyle: { type: "dashed", width: wall ? 3 : 2 } }
      ]
    };
  }
  function moneyOption(rows) {
    var x = axisStyle(), y1 = axisStyle(), y2 = axisStyle();
    x.type = "category"; x.data = rows.map(function (r) { return r.label; }); x.axisLabel.interval = 0;
    y1.type = "value"; y1.name = "欠费(万元)"; y1.nameTextStyle = { color: INK, fontSize: FONT };
    y2.type = "value"; y2.name = "今日收费(元)"; y2.nameTextStyle = { color: INK, fontSize: FONT };
    y2.splitLine = { show: false };
    return {
      grid: { left: 8, right: 8, top: wall ? 70 : 46, bottom: 8, containLabel: true },
      legend: { top: 0, data: ["欠费", "今日收费"], textStyle: { color: INK, fontSize: FONT } },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: x, yAxis: [y1, y2],
      series: [
        { name: "欠费", type: "bar", barMaxWidth: wall ? 60 : 30, itemStyle: { color: "#c0392b" },
          data: rows.map(function (r) { return Math.round(r.arrears_fen / 100) / 10000; }),
          label: { show: true, position: "top", color: INK, fontSize: FONT } },
        { name: "今日收费", type: "bar", yAxisIndex: 1, barMaxWidth: wall ? 60 : 30, itemStyle: { color: "#1e8e3e" },
          data: rows.map(function (r) { return r.collected_fen / 100; }) }
      ]
    };
  }
  function chart(id, onClick) {
    var el = $(id);
    if (!el || !window.echarts) return null;
    if (!charts[id]) {
      charts[id] = echarts.init(el);
      if (onClick) charts[id].on("click", onClick);
    }
    return charts[id];
  }
  function renderCharts(s) {
    var typeRows = spans.type === "today" ? s.today_by_type : s.by_type;
    var districtRows = spans.district === "today" ? s.today_by_district : s.by_district;
    var c = chart("chart-type", function (p) {
      var row = (spans.type === "today" ? last.today_by_type : last.by_type)[p.dataIndex];
      if (row) location.href = listUrl(spans.type === "today" ? "today_type" : "type", row.key);
    });
    if (c) c.setOption(barOption(typeRows, "#c0392b"));
    c = chart("chart-district", function (p) {
      var row = (spans.district === "today" ? last.today_by_district : last.by_district)[p.dataIndex];
      if (row) location.href = listUrl(spans.district === "today" ? "today_district" : "district", row.key);
    });
    if (c) c.setOption(barOption(districtRows, "#1a5fb4"));
    c = chart("chart-hourly");
    if (c) c.setOption(hourlyOption(s.intake_by_hour));
    c = chart("chart-money", function (p) {
      var row = last.money_by_district[p.dataIndex]; if (row) location.href = listUrl("arrears", row.key);
    });
    if (c) c.setOption(moneyOption(s.money_by_district));
  }
  function resizeCharts() { Object.keys(charts).forEach(function (k) { charts[k].resize(); }); }
  // The last tile stretches over what its row has left, so no grid slot stays empty.
  function fillLastRow() {
    var grid = $("tiles");
    if (!grid) return;
    var tiles = Array.prototype.filter.call(grid.children, function (el) { return el.offsetParent !== null; });
    if (!tiles.length) return;
    tiles[tiles.length - 1].style.gridColumn = "";
    var cols = getComputedStyle(grid).gridTemplateColumns.split(" ").length;
    var rest = tiles.length % cols;
    if (rest) tiles[tiles.length - 1].style.gridColumn = "span " + (cols - rest + 1);
  }
  window.addEventListener("resize", function () { resizeCharts(); fillLastRow(); });
  fillLastRow();
  document.querySelectorAll(".seg").forEach(function (seg) {
    seg.addEventListener("click", function (e) {
      var span = e.target.getAttribute("data-span");
      if (!span) return;
      spans[seg.getAttribute("data-chart")] = span;
      seg.querySelectorAll("button").forEach(function (b) { b.classList.toggle("on", b === e.target); });
      if (last) renderCharts(last);
    });
  });

  // --- lists --------------------------------------------------------------------------------
  function renderTrend(s) {
    var body = document.querySelector("#trend-table tbody");
    if (!body) return;
    var t = s.trend;
    if ($("last-season-date")) $("last-season-date").textContent = t.last_season_date;
    var rows = [["新增工单", t.tickets, ""], ["来电", t.calls, ""], ["收费（元）", t.collected_fen, "yuan"]];
    body.innerHTML = rows.map(function (r) {
      var v = r[1], show = function (x) { return r[2] === "yuan" ? yuan(x) : x; };
      return "<tr><th>" + r[0] + "</th><td><strong>" + show(v.today) + "</strong></td><td>" + show(v.yesterday) +
        ' <span class="delta">' + delta(v.today, v.yesterday, r[2]) + "</span></td><td>" + show(v.last_season) +
        ' <span class="delta">' + delta(v.today, v.last_season, r[2]) + "</span></td></tr>";
    }).join("");
  }
  function renderOutages(s) {
    var ul = $("outage-list");
    if (ul) {
      ul.innerHTML = s.outages.length ? s.outages.map(function (o) {
        return "<li><strong>" + esc(o.title) + '</strong> <span class="badge warn">' + esc(o.status_label) +
          "</span><div>影响 <strong>" + o.households + "</strong> 户 · 关联报修 <strong>" + (o.linked_reports || 0) +
          '</strong> 起</div><div class="muted small">开始 ' + localTime(o.starts_at, true) + " · 预计恢复 " +
          localTime(o.expected_end_at, true) + "</div></li>";
      }).join("") : '<li class="muted">当前没有停热</li>';
    }
    var sus = s.suspected_outages || [];
    var list = $("suspected-list");
    if (list) {
      list.innerHTML = sus.length ? sus.map(function (c) {
        return '<li><a href="' + listUrl("suspected", c.id) + '"><strong>' + esc(c.place) + "</strong></a> " +
          '<span class="badge bad">' + c.reports + " 起不热报修</span>" +
          '<div class="muted small">首报 ' + localTime(c.first_report_at, true) + " · 最近 " +
          localTime(c.last_report_at, true) + "</div></li>";
      }).join("") : '<li class="muted">暂无</li>';
    }
    var bar = $("suspected-alert");
    if (bar) {
      bar.hidden = !sus.length;
      $("suspected-text").textContent = sus.map(function (c) { return c.place + "（" + c.reports + " 起报不热）"; }).join("、");
    }
  }
  function renderCrews(s) {
    var body = $("crew-rows");
    if (!body) return;
    body.innerHTML = s.crews.map(function (c) {
      var loc = c.last_location;
      var where = loc ? esc(loc.name) + "：" + esc(loc.location || (loc.latitude + "," + loc.longitude)) +
        ' <span class="muted small">' + localTime(loc.located_at, true) + "</span>" : '<span class="muted">暂无</span>';
      return '<tr><td><a href="' + listUrl("crew", c.id) + '">' + esc(c.name) + "</a></td><td>" + c.open +
        '</td><td class="' + (c.overdue ? "bad" : "") + '">' + c.overdue + "</td><td>" + where + "</td></tr>";
    }).join("");
  }

  function render(s) {
    last = s;
    document.querySelectorAll("[data-fig]").forEach(function (el) {
      var text = fmt(get(s, el.getAttribute("data-fig")), el.getAttribute("data-format"));
      if (el.textContent !== text) el.textContent = text;
    });
    document.querySelectorAll("[data-trend]").forEach(function (el) {
      var parts = el.getAttribute("data-trend").split(".");
      var series = s.trend[parts[0]];
      el.textContent = delta(series.today, series[parts[1]], el.getAttribute("data-format"));
    });
    if ($("updated")) {
      $("updated").textContent = new Date(s.generated_at).toLocaleTimeString("zh-CN", { timeZone: cfg.timeZone, hour12: false });
    }
    renderCharts(s);
    renderTrend(s);
    renderOutages(s);
    renderCrews(s);
  }

  function setLive(on, text) {
    var el = $("live");
    if (!el) return;
    el.classList.toggle("on", on);
    $("live-text").textContent = text;
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

  // --- the wall: a clock and rotating panels ------------------------------------------------
  function startWall() {
    var clock = $("wall-clock");
    function tick() {
      clock.textContent = new Date().toLocaleString("zh-CN", { timeZone: cfg.timeZone, hour12: false,
        month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    }
    if (clock) { tick(); setInterval(tick, 1000); }
    var slides = Array.prototype.slice.call(document.querySelectorAll(".rotor .slide"));
    var dots = $("slide-dots");
    var index = 0;
    function show(i) {
      index = (i + slides.length) % slides.length;
      slides.forEach(function (el, k) { el.classList.toggle("on", k === index); });
      if (dots) {
        dots.innerHTML = slides.map(function (el, k) {
          return '<span class="' + (k === index ? "on" : "") + '">' + esc(el.getAttribute("data-title")) + "</span>";
        }).join("");
      }
      resizeCharts();
    }
    if (slides.length) {
      show(0);
      if (cfg.rotateSeconds > 0 && slides.length > 1) {
        setInterval(function () { show(index + 1); }, cfg.rotateSeconds * 1000);
      }
      window.DASHBOARD.show = show;  // tests and a keyboard may move on at once
      document.addEventListener("keydown", function (e) {
        if (e.key === "ArrowRight") show(index + 1);
        if (e.key === "ArrowLeft") show(index - 1);
      });
    }
  }

  // WeChat's OAuth fragment survives the redirects: keep the address clean.
  if (location.hash === "#wechat_redirect" && window.history.replaceState) {
    history.replaceState(null, "", location.pathname + location.search);
  }
  if (wall) startWall();
  render(JSON.parse($("summary-data").textContent));
  connect();
})();
