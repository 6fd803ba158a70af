"""GET /sandbox: simulated users' chats, as a phone shows them (for the demo).

Plain HTML, CSS and a little vanilla JavaScript that polls the control endpoints; no CDN.
Inbound messages (the user's) on the right, what the backend sent on the left.

The demo city has hundreds of users, so the page opens only a few phones: a people panel
searches them (GET /users?q=&limit=), staff come first as quick chips, and the open phones
live in the address (#open=<openid>,<openid>), so a link opens a given person's chat and a
reload keeps them. With nothing in the address, the 4 most recently active users are open.
Only open phones are polled. Each phone's "打开公众号页面" opens the backend's web pages in a
new tab as that person (``/users/<openid>/web``, through WeChat's web authorisation).
"""
from __future__ import annotations

from flask import Blueprint, Response

PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>微信沙箱 · 模拟用户会话</title>
<style>
  body { margin: 0; font-family: -apple-system, "PingFang SC", "Microsoft YaHei", sans-serif; background: #e9e9e9; }
  header { background: #2e2e2e; color: #fff; padding: 10px 16px; display: flex; gap: 12px; align-items: center; }
  header h1 { font-size: 17px; margin: 0; flex: 1; }
  header button { background: #07c160; color: #fff; border: 0; border-radius: 4px; padding: 6px 12px; cursor: pointer; }
  main { display: flex; align-items: flex-start; }
  #people { width: 290px; flex: none; box-sizing: border-box; padding: 14px; background: #f7f7f7;
            border-right: 1px solid #d6d6d6; position: sticky; top: 0; max-height: 100vh; overflow-y: auto; }
  #people h2 { font-size: 13px; color: #666; margin: 14px 0 6px; font-weight: normal; }
  #people h2:first-child { margin-top: 0; }
  #search { width: 100%; box-sizing: border-box; border: 1px solid #ccc; border-radius: 4px; padding: 7px 8px; font-size: 14px; }
  #results { list-style: none; margin: 8px 0 0; padding: 0; }
  #results li { display: flex; align-items: center; gap: 6px; padding: 6px 4px; border-bottom: 1px solid #e6e6e6; font-size: 13px; }
  #results .who { flex: 1; min-width: 0; }
  #results .who b { display: block; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  #results .who small { color: #999; }
  #results button, #chips button { border: 1px solid #07c160; color: #07c160; background: #fff; border-radius: 4px;
                                   cursor: pointer; font-size: 12px; padding: 3px 8px; }
  #results button.opened, #chips button.opened { background: #07c160; color: #fff; }
  #chips { display: flex; flex-wrap: wrap; gap: 5px; }
  .hint { color: #999; font-size: 12px; margin: 8px 0; }
  #phones { flex: 1; display: flex; flex-wrap: wrap; gap: 18px; padding: 18px; align-content: flex-start; }
  .phone { width: 320px; height: 600px; background: #ededed; border: 10px solid #222; border-radius: 28px;
           display: flex; flex-direction: column; overflow: hidden; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
  .title { background: #ededed; border-bottom: 1px solid #d6d6d6; padding: 10px 30px; text-align: center; font-weight: 600;
           position: relative; }
  .title .close { position: absolute; right: 6px; top: 8px; border: 0; background: none; font-size: 18px; line-height: 1;
                  color: #888; cursor: pointer; padding: 2px 6px; }
  .phone.flash { box-shadow: 0 0 0 4px #07c160; }
  .title small { display: block; font-weight: normal; color: #888; font-size: 11px; }
  .title a.web { display: inline-block; margin-top: 3px; font-weight: normal; font-size: 12px; color: #576b95; }
  .chat { flex: 1; overflow-y: auto; padding: 10px 8px; }
  .row { display: flex; margin: 8px 0; align-items: flex-start; }
  .row.in { flex-direction: row-reverse; }
  .avatar { width: 34px; height: 34px; border-radius: 4px; flex: none; display: flex; align-items: center;
            justify-content: center; color: #fff; font-size: 13px; }
  .out .avatar { background: #d9534f; }
  .in .avatar { background: #576b95; }
  .bubble { max-width: 200px; margin: 0 8px; padding: 8px 10px; border-radius: 4px; font-size: 14px;
            line-height: 1.45; word-break: break-word; white-space: pre-wrap; }
  .out .bubble { background: #fff; }
  .in .bubble { background: #95ec69; }
  .bubble img { max-width: 180px; display: block; border-radius: 3px; }
  .card { background: #fff; border-radius: 6px; margin: 0 8px; width: 220px; font-size: 13px; overflow: hidden; }
  .card h4 { margin: 0; padding: 8px 10px; font-size: 14px; border-bottom: 1px solid #eee; }
  .card dl { margin: 0; padding: 6px 10px; }
  .card dt { color: #999; float: left; clear: left; width: 72px; overflow: hidden; text-overflow: ellipsis; }
  .card dd { margin: 0 0 3px 76px; }
  .card a { display: block; padding: 6px 10px; border-top: 1px solid #eee; color: #576b95; text-decoration: none; }
  .note { text-align: center; color: #999; font-size: 12px; margin: 8px 0; }
  .note.error { color: #d9534f; }
  form { display: flex; gap: 6px; padding: 8px; background: #f7f7f7; border-top: 1px solid #d6d6d6; }
  form input { flex: 1; border: 1px solid #ddd; border-radius: 4px; padding: 6px; font-size: 14px; }
  form button { background: #07c160; color: #fff; border: 0; border-radius: 4px; padding: 0 10px; cursor: pointer; }
  .tools { display: flex; gap: 4px; padding: 0 8px 8px; background: #f7f7f7; }
  .tools button { flex: 1; font-size: 12px; border: 1px solid #ccc; background: #fff; border-radius: 4px; cursor: pointer; }
  #stage { flex: 1; min-width: 0; }
  #empty { padding: 40px 18px 0; margin: 0; color: #666; }
</style>
</head>
<body>
<header>
  <h1>微信沙箱 · 模拟用户的手机</h1>
  <button id="new-user" type="button">新建模拟用户</button>
</header>
<main>
  <aside id="people">
    <h2>找人</h2>
    <input id="search" type="search" maxlength="64" autocomplete="off"
           placeholder="搜索昵称或 openid，如 leader1、crew1_m1、张伟">
    <h2 id="results-title">最近活跃</h2>
    <ul id="results"><li class="hint">加载中…</li></ul>
    <h2>工作人员</h2>
    <div id="chips"><span class="hint">加载中…</span></div>
  </aside>
  <section id="stage">
    <p id="empty" hidden></p>
    <div id="phones"></div>
  </section>
</main>
<script>
(function () {
  "use strict";
  var base = location.pathname.replace(/\\/+$/, "");
  var phones = {};    // open phones by the openid in the address: {box, seen, busy, again}
  var known = {};     // users already fetched, by openid
  var MAX_RESULTS = 30, MAX_CHIPS = 80, RECENT_ON_LOAD = 4;
  var STAFF = /^(leader|crew|agent|admin)/i;
  var userCount = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function api(method, path, body) {
    var options = { method: method, headers: {} };
    if (body) { options.headers["Content-Type"] = "application/json"; options.body = JSON.stringify(body); }
    return fetch(base + path, options).then(function (r) {
      return r.json().then(function (data) {
        if (r.ok) return data;
        var error = new Error((data && data.error && data.error.message) || ("HTTP " + r.status));
        error.status = r.status;
        throw error;
      });
    });
  }
  function failed(chat) {
    return function (error) {
      chat.appendChild(el("div", "note error", "操作失败：" + error.message));
      chat.scrollTop = chat.scrollHeight;
    };
  }
  function status(user) { return (user.subscribed ? "已关注 · " : "未关注 · ") + user.openid; }
  var EVENTS = { subscribe: "关注了公众号", unsubscribe: "取消关注", SCAN: "扫描了二维码", CLICK: "点击了菜单",
                 VIEW: "打开了菜单链接", subscribe_msg_popup_event: "订阅消息授权",
                 subscribe_msg_change_event: "关闭了订阅通知" };

  // A link as the phone opens it: in the browser of that person (GET /users/<openid>/web?url=,
  // through the backend's web sign-in when the link is on its site).
  function asUser(openid, href) {
    if (!/^https?:\\/\\//i.test(href || "")) return null;
    return base + "/users/" + encodeURIComponent(openid) + "/web?url=" + encodeURIComponent(href);
  }
  // Text as WeChat shows it: <a href> become links (nothing else of the markup is kept).
  function richText(text, openid) {
    var out = document.createDocumentFragment();
    var doc = new DOMParser().parseFromString("<body>" + text, "text/html");
    doc.body.childNodes.forEach(function (node) {
      if (node.nodeType === 1 && node.tagName === "A") {
        var target = node.getAttribute("data-miniprogram-appid") ? null : asUser(openid, node.getAttribute("href"));
        var a = el(target ? "a" : "span", null, node.textContent);
        if (target) { a.href = target; a.target = "_blank"; a.rel = "noopener"; }
        else a.title = "小程序链接（沙箱中不打开）";
        out.appendChild(a);
      } else {
        out.appendChild(document.createTextNode(node.textContent));
      }
    });
    return out;
  }

  function card(title, data, link, rows) {
    var box = el("div", "card");
    box.appendChild(el("h4", null, title));
    var dl = el("dl");
    if (rows) {  // the template's own labels, in its order, as the phone shows them
      rows.forEach(function (r) { dl.appendChild(el("dt", null, r[0])); dl.appendChild(el("dd", null, r[1])); });
    } else {
      Object.keys(data || {}).forEach(function (key) {
        dl.appendChild(el("dt", null, key));
        dl.appendChild(el("dd", null, (data[key] && data[key].value !== undefined) ? data[key].value : String(data[key])));
      });
    }
    box.appendChild(dl);
    if (link) { var a = el("a", null, "详情 ›"); a.href = link; a.target = "_blank"; a.rel = "noopener"; box.appendChild(a); }
    return box;
  }

  function render(m, nickname, openid) {
    if (m.direction === "system") {
      if (m.kind === "error" || m.kind === "flag") return el("div", "note error", m.content + (m.error ? "（" + m.error + "）" : ""));
      return null;  // event pushes are bookkeeping, not chat
    }
    if (m.kind === "event") {
      var text = (EVENTS[m.event] || m.event) + (m.scene ? "（场景 " + m.scene + "）" : "") + (m.key ? "：" + m.key : "");
      return el("div", "note", nickname + " " + text);
    }
    var row = el("div", "row " + m.direction);
    row.appendChild(el("div", "avatar", m.direction === "in" ? nickname.slice(0, 1) : "热"));
    var content;
    if (m.kind === "template") {
      content = card(m.title || ("模板消息 · " + m.template_id), m.data, asUser(openid, m.url), m.rows);
    } else if (m.kind === "subscribe") {
      content = card(m.title ? m.title + " · 订阅消息" : ("订阅消息 · " + m.template_id), m.data, null, m.rows);
    } else if (m.msgtype === "image" || m.media_id) {
      content = el("div", "bubble");
      var img = el("img");
      img.src = m.pic_url || (base + "/media/pic/" + m.media_id);
      img.alt = "图片";
      content.appendChild(img);
    } else if (m.msgtype === "location") {
      content = el("div", "bubble", "📍 " + (m.label || "") + "\\n" + m.latitude + ", " + m.longitude);
    } else if (m.msgtype === "news" && m.articles) {
      content = card("图文消息", {}, null);
      m.articles.forEach(function (a) {
        var link = el("a", null, a.Title || "图文"); link.href = a.Url || "#"; link.target = "_blank";
        content.appendChild(link);
      });
    } else {
      var text2 = m.content;
      if (text2 === undefined || text2 === null) text2 = "[" + (m.msgtype || m.kind) + "]";
      content = el("div", "bubble", m.kind === "mass" ? "【群发】" : null);
      content.appendChild(richText(String(text2), openid));
    }
    row.appendChild(content);
    return row;
  }

  function phone(user, onClose) {
    var box = el("div", "phone");
    box.id = "phone-" + user.openid;
    box.setAttribute("data-openid", user.openid);
    var title = el("div", "title", user.nickname);
    title.appendChild(el("small", null, status(user)));
    var close = el("button", "close", "×");
    close.type = "button";
    close.title = "关闭这部手机";
    close.setAttribute("aria-label", "关闭" + user.nickname + "的手机");
    close.addEventListener("click", onClose);
    title.appendChild(close);
    // The official account's web pages (缴费、报修、工单、我的) in a new tab, signed in as this
    // person through WeChat's web authorisation (GET /users/<openid>/web).
    var web = el("a", "web", "打开公众号页面");
    web.href = base + "/users/" + encodeURIComponent(user.openid) + "/web";
    web.target = "_blank";
    web.rel = "noopener";
    web.title = "以" + user.nickname + "的身份打开公众号网页";
    web.setAttribute("data-testid", "open-pages");
    title.appendChild(web);
    var chat = el("div", "chat");
    var form = el("form");
    var input = el("input");
    input.placeholder = "以" + user.nickname + "的身份发消息";
    var send = el("button", null, "发送");
    send.type = "submit";
    form.appendChild(input);
    form.appendChild(send);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      input.value = "";
      api("POST", "/users/" + user.openid + "/messages", { type: "text", content: text }).then(refresh, failed(chat));
    });
    var tools = el("div", "tools");
    [["发图片", { type: "image" }], ["发位置", { type: "location", latitude: 45.75, longitude: 126.63, label: "模拟位置" }],
     ["点菜单", { type: "event", event: "CLICK", key: "REPAIR" }]].forEach(function (t) {
      var b = el("button", null, t[0]);
      b.type = "button";
      b.addEventListener("click", function () {
        api("POST", "/users/" + user.openid + "/messages", t[1]).then(refresh, failed(chat));
      });
      tools.appendChild(b);
    });
    // Scanning a QR code: the scene string a page shows (staff:<code>, hh:<户号>). A follower
    // sends SCAN; someone who does not follow yet subscribes through the code, as in WeChat.
    var scan = el("button", null, "扫码");
    scan.type = "button";
    scan.title = "模拟扫描带参数二维码（输入场景值，如 staff:xxxx 或 hh:10100001）";
    scan.addEventListener("click", function () {
      var scene = (window.prompt("输入二维码的场景值（如 staff:xxxx、hh:10100001）") || "").trim();
      if (!scene) return;
      api("GET", "/users/" + user.openid).then(function (now) {
        var event = now.subscribed ? "SCAN" : "subscribe";
        return api("POST", "/users/" + user.openid + "/messages", { type: "event", event: event, scene: scene });
      }).then(refresh, failed(chat));
    });
    tools.appendChild(scan);
    box.appendChild(title);
    box.appendChild(chat);
    box.appendChild(form);
    box.appendChild(tools);
    return box;
  }

  // --- which phones are open: the address (#open=<openid>,<openid>) is the one record ---
  function hashIds() {
    var found = /(?:^#|&)open=([^&]*)/.exec(location.hash);
    if (!found) return null;
    var raw;
    try { raw = decodeURIComponent(found[1]); } catch (e) { raw = found[1]; }
    var ids = [];
    raw.split(",").forEach(function (id) {
      id = id.trim();
      if (id && ids.indexOf(id) < 0) ids.push(id);
    });
    return ids;
  }
  function writeHash(ids) {
    var hash = "#open=" + ids.map(encodeURIComponent).join(",");
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }
  function openPhone(openid) {
    var ids = hashIds() || [];
    notice("");
    if (ids.indexOf(openid) < 0) { ids.unshift(openid); writeHash(ids); sync(); }
    var p = phones[openid];
    if (p && p.box) flash(p.box);
    updateEmpty();
  }
  function closePhone(openid) {
    notice("");
    writeHash((hashIds() || []).filter(function (id) { return id !== openid; }));
    sync();
  }
  function flash(box) {
    box.scrollIntoView({ block: "nearest", inline: "nearest" });
    box.classList.add("flash");
    setTimeout(function () { box.classList.remove("flash"); }, 800);
  }

  function sync() {
    var ids = hashIds();
    if (ids === null) {  // nothing asked for: the most recently active people
      api("GET", "/users?order=recent&limit=" + RECENT_ON_LOAD).then(function (users) {
        users.forEach(function (u) { known[u.openid] = u; });
        if (userCount === null) userCount = users.length;
        if (hashIds() === null) writeHash(users.map(function (u) { return u.openid; }));
        sync();
      }, function (error) { showEmpty("读取模拟用户失败：" + error.message); });
      return;
    }
    Object.keys(phones).forEach(function (id) {
      if (ids.indexOf(id) < 0) {
        if (phones[id].box) phones[id].box.remove();
        delete phones[id];
      }
    });
    ids.forEach(function (id) { if (!phones[id]) load(id); });
    place();
    markOpened();
    updateEmpty();
  }

  function load(id) {
    var p = { box: null, seen: 0, busy: false, again: false };
    phones[id] = p;
    var user = known[id];
    (user ? Promise.resolve(user) : api("GET", "/users/" + encodeURIComponent(id))).then(function (user) {
      known[id] = user;
      if (phones[id] !== p) return;  // closed meanwhile
      p.box = phone(user, function () { closePhone(id); });
      place();
      updateEmpty();
      poll(id);
    }, function (error) {
      if (phones[id] !== p) return;
      delete phones[id];
      writeHash((hashIds() || []).filter(function (other) { return other !== id; }));
      notice(error.status === 404 ? "没有 openid 为 " + id + " 的模拟用户（沙箱可能已重置），已从打开列表移除。"
                                  : "打开 " + id + " 的手机失败：" + error.message);
      updateEmpty();
    });
  }

  function place() {  // the phones in the order of the address, moving only what is out of place
    var container = document.getElementById("phones");
    var boxes = (hashIds() || []).map(function (id) { return phones[id] && phones[id].box; }).filter(Boolean);
    boxes.forEach(function (box, i) {
      if (container.children[i] !== box) container.insertBefore(box, container.children[i] || null);
    });
  }

  var lastNotice = "";  // why something asked for did not open; cleared by the next open or close
  function notice(text) { lastNotice = text; }
  function showEmpty(text) {
    var empty = document.getElementById("empty");
    empty.textContent = text;
    empty.hidden = !text;
  }
  function updateEmpty() {
    var open = Object.keys(phones).length;
    var text = lastNotice;
    if (!open) {
      if (userCount === 0) text += (text ? " " : "") + "还没有模拟用户。点击右上角“新建模拟用户”。";
      else text += (text ? " " : "") + "没有打开的手机。在左侧搜索昵称或 openid，点“打开”查看 TA 的会话。";
    }
    showEmpty(text);
  }

  // --- polling: only the open phones ---
  function poll(id) {
    var p = phones[id];
    if (!p || !p.box) return;
    if (p.busy) { p.again = true; return; }
    p.busy = true;
    var path = "/users/" + encodeURIComponent(id);
    Promise.all([api("GET", path), api("GET", path + "/inbox?all=1&after=" + p.seen)]).then(function (answers) {
      if (phones[id] !== p) return;
      var user = answers[0], messages = answers[1];
      known[id] = user;
      p.box.querySelector(".title small").textContent = status(user);
      var chat = p.box.querySelector(".chat");
      messages.forEach(function (m) {
        p.seen = Math.max(p.seen, m.id);
        var node = render(m, user.nickname, user.openid);
        if (node) chat.appendChild(node);
      });
      if (messages.length) chat.scrollTop = chat.scrollHeight;
    }, function () { /* the next round tries again */ }).then(function () {
      p.busy = false;
      if (p.again) { p.again = false; poll(id); }
    });
  }
  function refresh() { Object.keys(phones).forEach(poll); }

  // --- the people panel: search, staff chips ---
  var search = document.getElementById("search");
  var results = document.getElementById("results");
  var searchSeq = 0, searchTimer = null;

  function openButton(user, label) {
    var b = el("button", null, label || "打开");
    b.type = "button";
    b.setAttribute("data-open", user.openid);
    b.setAttribute("data-label", label || "打开");
    b.title = "打开" + user.nickname + "的手机";
    b.addEventListener("click", function () { known[user.openid] = user; openPhone(user.openid); });
    return b;
  }
  function markOpened() {
    var ids = hashIds() || [];
    document.querySelectorAll("[data-open]").forEach(function (b) {
      var open = ids.indexOf(b.getAttribute("data-open")) >= 0;
      b.classList.toggle("opened", open);
      if (b.parentNode.id !== "chips") b.textContent = open ? "已打开" : b.getAttribute("data-label");
    });
  }
  function row(user) {
    var li = el("li");
    li.setAttribute("data-openid", user.openid);
    var who = el("div", "who");
    who.appendChild(el("b", null, user.nickname));
    who.appendChild(el("small", null, (user.subscribed ? "已关注" : "未关注") + " · " + user.openid.slice(0, 10) + "…"));
    li.appendChild(who);
    li.appendChild(openButton(user));
    return li;
  }
  function runSearch() {
    var q = search.value.trim();
    var seq = ++searchSeq;
    var path = q ? "/users?limit=" + MAX_RESULTS + "&q=" + encodeURIComponent(q)
                 : "/users?order=recent&limit=" + MAX_RESULTS;
    api("GET", path).then(function (users) {
      if (seq !== searchSeq) return;  // a newer search is on its way
      document.getElementById("results-title").textContent = q ? "搜索结果" : "最近活跃";
      results.textContent = "";
      if (!q) { userCount = users.length; updateEmpty(); }
      if (!users.length) {
        results.appendChild(el("li", "hint", q ? "没有昵称或 openid 含“" + q + "”的用户。" : "还没有模拟用户。"));
      }
      users.forEach(function (u) { known[u.openid] = u; results.appendChild(row(u)); });
      if (users.length === MAX_RESULTS) {
        results.appendChild(el("li", "hint", "只显示前 " + MAX_RESULTS + " 位，输入更完整的昵称或 openid 缩小范围。"));
      }
      markOpened();
    }, function (error) {
      if (seq !== searchSeq) return;
      results.textContent = "";
      results.appendChild(el("li", "hint", "搜索失败：" + error.message));
    });
  }
  search.addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 200);
  });
  search.addEventListener("keydown", function (event) {
    if (event.key !== "Enter") return;
    clearTimeout(searchTimer);
    runSearch();
  });

  function loadChips() {  // staff first: the demo city names them after their console usernames
    var prefixes = ["leader", "admin", "agent", "crew"];
    Promise.all(prefixes.map(function (p) { return api("GET", "/users?limit=200&q=" + p); })).then(function (lists) {
      var chips = document.getElementById("chips");
      var staff = [], ids = {};
      lists.forEach(function (users) {
        users.forEach(function (u) {
          if (ids[u.openid] || !STAFF.test(u.nickname)) return;
          ids[u.openid] = true;
          staff.push(u);
        });
      });
      chips.textContent = "";
      if (!staff.length) chips.appendChild(el("span", "hint", "没有工作人员账号（昵称以 leader、crew、agent、admin 开头）。"));
      staff.slice(0, MAX_CHIPS).forEach(function (u) { known[u.openid] = u; chips.appendChild(openButton(u, u.nickname)); });
      if (staff.length > MAX_CHIPS) chips.appendChild(el("span", "hint", "还有 " + (staff.length - MAX_CHIPS) + " 位，请用搜索。"));
      markOpened();
    }, function (error) {
      var chips = document.getElementById("chips");
      chips.textContent = "";
      chips.appendChild(el("span", "hint", "读取失败：" + error.message));
    });
  }

  document.getElementById("new-user").addEventListener("click", function () {
    api("POST", "/users", {}).then(function (user) {
      known[user.openid] = user;
      userCount = (userCount || 0) + 1;
      openPhone(user.openid);
      runSearch();
    }, function (error) { notice("新建模拟用户失败：" + error.message); updateEmpty(); });
  });
  window.addEventListener("hashchange", sync);
  if (hashIds() !== null && !hashIds().length) history.replaceState(null, "", location.pathname + location.search);
  sync();  // an empty #open= on arrival counts as nothing asked for: the most recent open
  runSearch();
  loadChips();
  setInterval(refresh, 2000);
})();
</script>
</body>
</html>
"""


def register(bp: Blueprint, sb) -> None:
    @bp.route("/")
    def page():
        return Response(PAGE, content_type="text/html; charset=utf-8")
