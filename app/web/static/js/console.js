/* Staff console: area picker with live counts, WeChat preview, announcement progress. */
(function () {
  "use strict";

  function csrf() {
    var el = document.querySelector('input[name="csrf_token"]');
    return el ? el.value : "";
  }
  function postJSON(url, data) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(data)
    }).then(function (r) { return r.json(); });
  }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  /* --- area picker ------------------------------------------------------------------------ */
  function AreaPicker(root, onChange) {
    var options = JSON.parse(root.querySelector(".area-options").textContent);
    var hidden = root.querySelector(".areas-json");
    var buildings = [];
    var byId = {};
    options.communities.forEach(function (c) { byId[c.id] = c; });

    function read() {
      var areas = [];
      root.querySelectorAll(".pick-station:checked").forEach(function (el) { areas.push({ station_id: +el.value }); });
      root.querySelectorAll(".pick-community:checked").forEach(function (el) { areas.push({ community_id: +el.value }); });
      buildings.forEach(function (b) { areas.push({ community_id: b.community_id, building: b.building }); });
      return areas;
    }
    function drawBuildings() {
      root.querySelector(".picked-buildings").innerHTML = buildings.map(function (b, i) {
        var c = byId[b.community_id] || { name: "?" };
        return "<li>" + esc(c.district + "·" + c.name + " " + b.building + "号楼") +
          ' <button type="button" class="link" data-remove="' + i + '">移除</button></li>';
      }).join("");
    }
    function changed() {
      var areas = read();
      hidden.value = JSON.stringify(areas);
      onChange(areas, root);
    }
    // Load current areas (editing an outage).
    JSON.parse(hidden.value || "[]").forEach(function (a) {
      if (a.station_id) {
        var s = root.querySelector('.pick-station[value="' + a.station_id + '"]'); if (s) s.checked = true;
      } else if (a.community_id && a.building) {
        buildings.push({ community_id: a.community_id, building: a.building });
      } else if (a.community_id) {
        var c = root.querySelector('.pick-community[value="' + a.community_id + '"]'); if (c) c.checked = true;
      }
    });
    drawBuildings();
    root.addEventListener("change", function (e) {
      if (e.target.classList.contains("pick-building-community")) {
        var c = byId[e.target.value];
        root.querySelector(".pick-building").innerHTML = '<option value="">选择楼号</option>' +
          (c ? c.buildings.map(function (b) { return '<option value="' + esc(b) + '">' + esc(b) + "号楼</option>"; }).join("") : "");
        return;
      }
      if (e.target.classList.contains("pick-building")) return;
      changed();
    });
    root.addEventListener("click", function (e) {
      if (e.target.classList.contains("add-building")) {
        var cid = +root.querySelector(".pick-building-community").value;
        var b = root.querySelector(".pick-building").value;
        if (cid && b && !buildings.some(function (x) { return x.community_id === cid && x.building === b; })) {
          buildings.push({ community_id: cid, building: b });
          drawBuildings(); changed();
        }
      } else if (e.target.hasAttribute("data-remove")) {
        buildings.splice(+e.target.getAttribute("data-remove"), 1);
        drawBuildings(); changed();
      }
    });
    this.refresh = changed;
  }

  /* --- outage form: households affected, confirm before sending ---------------------------- */
  var outageForm = document.getElementById("outage-form");
  if (outageForm && outageForm.querySelector(".area-picker")) {
    var lastCount = 0;
    var root = outageForm.querySelector(".area-picker");
    var picker = new AreaPicker(root, function (areas) {
      postJSON(root.getAttribute("data-count-url"), areas).then(function (r) {
        lastCount = r.households || 0;
        root.querySelector(".area-count").textContent = lastCount;
      });
    });
    picker.refresh();
    outageForm.addEventListener("submit", function (e) {
      var msg = outageForm.getAttribute("data-confirm").replace("{n}", lastCount);
      if (!window.confirm(msg)) e.preventDefault();
    });
  }

  /* --- 疑似停热 → 停热: confirm with the households to be notified ---------------------------- */
  document.querySelectorAll("form.cluster-convert").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (e.submitter && e.submitter.name === "confirmed") return;
      var n = form.getAttribute("data-households");
      if (!window.confirm(form.getAttribute("data-confirm").replace("{n}", n))) { e.preventDefault(); return; }
      form.querySelector('input[name="confirmed"]').value = n;
    });
  });

  /* --- announcement composer: audience count and WeChat preview ---------------------------- */
  var annForm = document.getElementById("announcement-form");
  if (annForm) {
    var areaBox = document.getElementById("area-box");
    var annRoot = areaBox.querySelector(".area-picker");
    var countTimer = null;
    function audience() { return annForm.querySelector('input[name="audience"]:checked').value; }
    function updateCount() {
      clearTimeout(countTimer);
      countTimer = setTimeout(function () {
        var areas = JSON.parse(annRoot.querySelector(".areas-json").value || "[]");
        postJSON(annRoot.getAttribute("data-count-url"), { audience: audience(), areas: areas }).then(function (r) {
          var n = r.recipients === undefined ? "—" : r.recipients;
          document.getElementById("recipients").textContent = n;
          annRoot.querySelector(".area-count").textContent = n;
        });
      }, 200);
    }
    new AreaPicker(annRoot, updateCount);
    function preview() {
      var title = annForm.querySelector("#title").value.trim();
      var body = annForm.querySelector("#body").value.trim();
      document.getElementById("pv-title").textContent = title || "（标题）";
      document.getElementById("pv-body").textContent = body || "（内容）";
      var d = new Date();
      document.getElementById("pv-time").textContent = (d.getMonth() + 1) + "月" + d.getDate() + "日";
    }
    annForm.addEventListener("input", preview);
    /* A mass send asks first, with the number of recipients (the server checks the number). */
    annForm.addEventListener("submit", function (e) {
      var send = annForm.querySelector('input[name="send"]:checked').value;
      var confirmed = annForm.querySelector('input[name="confirmed"]');
      if (send === "draft" || e.submitter && e.submitter.name === "confirmed") return;
      var n = document.getElementById("recipients").textContent;
      if (!/^\d+$/.test(n)) return;  /* no count yet: the server shows it and asks */
      var title = annForm.querySelector("#title").value.trim();
      var what = send === "later" ? "定时发送给" : "立即发送给";
      if (!window.confirm("公告“" + title + "”将" + what + " " + n + " 人，确定？")) { e.preventDefault(); return; }
      confirmed.value = n;
    });
    annForm.addEventListener("change", function (e) {
      if (e.target.name === "audience") {
        areaBox.hidden = audience() !== "area";
        updateCount();
      }
      if (e.target.name === "send") {
        document.getElementById("schedule-box").hidden = e.target.value !== "later";
      }
    });
    preview();
    updateCount();
  }

  /* --- announcement progress (polling once a second until the end) ------------------------- */
  var card = document.getElementById("progress-card");
  if (card) {
    var url = card.getAttribute("data-progress-url");
    var FINAL = ["done", "cancelled"];
    function draw(p) {
      document.getElementById("progress-bar").style.width = p.percent + "%";
      document.getElementById("progress-pct").textContent = p.percent + "%";
      document.getElementById("progress").setAttribute("aria-valuenow", p.percent);
      ["total", "sent", "failed", "skipped", "unknown"].forEach(function (k) {
        document.getElementById("p-" + k).textContent = p[k];
      });
      document.getElementById("p-waiting").textContent = p.pending + p.sending;
      document.getElementById("p-unknown-wrap").className = p.unknown ? "bad" : "";
      var unknownCard = document.getElementById("unknown-card");
      if (unknownCard && String(p.unknown) !== unknownCard.getAttribute("data-unknown")) {
        unknownCard.hidden = false;  /* the list on the page is older than these counts */
        document.getElementById("unknown-stale").hidden = false;
      }
      document.getElementById("ann-status").textContent = p.status_label;
      document.getElementById("ann-result").className = "result-summary " + (p.tone || "");
      document.getElementById("progress-bar").className = "bar tone-" + (p.tone || "none");
      document.getElementById("ann-reason").textContent = p.status_reason || "";
      document.querySelectorAll(".ann-action").forEach(function (f) {
        f.hidden = f.getAttribute("data-states").split(",").indexOf(p.status) < 0;
      });
    }
    function poll() {
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (p) {
        draw(p);
        if (FINAL.indexOf(p.status) < 0) setTimeout(poll, 1000);
      }).catch(function () { setTimeout(poll, 3000); });
    }
    poll();
  }
})();
