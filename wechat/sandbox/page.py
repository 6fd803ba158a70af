"""GET /sandbox: every simulated user's chat, as a phone shows it (for the demo).

Plain HTML, CSS and a little vanilla JavaScript that polls the control endpoints; no CDN.
Inbound messages (the user's) on the right, what the backend sent on the left.
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
  #phones { display: flex; flex-wrap: wrap; gap: 18px; padding: 18px; }
  .phone { width: 320px; height: 600px; background: #ededed; border: 10px solid #222; border-radius: 28px;
           display: flex; flex-direction: column; overflow: hidden; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
  .title { background: #ededed; border-bottom: 1px solid #d6d6d6; padding: 10px; text-align: center; font-weight: 600; }
  .title small { display: block; font-weight: normal; color: #888; font-size: 11px; }
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
  #empty { padding: 40px; color: #666; }
</style>
</head>
<body>
<header>
  <h1>微信沙箱 · 模拟用户的手机</h1>
  <button id="new-user" type="button">新建模拟用户</button>
</header>
<div id="phones"><p id="empty">还没有模拟用户。点击右上角“新建模拟用户”。</p></div>
<script>
(function () {
  "use strict";
  var base = location.pathname.replace(/\\/+$/, "");
  var seen = {};

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function api(method, path, body) {
    var options = { method: method, headers: {} };
    if (body) { options.headers["Content-Type"] = "application/json"; options.body = JSON.stringify(body); }
    return fetch(base + path, options).then(function (r) { return r.json(); });
  }
  var EVENTS = { subscribe: "关注了公众号", unsubscribe: "取消关注", SCAN: "扫描了二维码", CLICK: "点击了菜单",
                 VIEW: "打开了菜单链接", subscribe_msg_popup_event: "订阅消息授权" };

  function card(title, data, link) {
    var box = el("div", "card");
    box.appendChild(el("h4", null, title));
    var dl = el("dl");
    Object.keys(data || {}).forEach(function (key) {
      dl.appendChild(el("dt", null, key));
      dl.appendChild(el("dd", null, (data[key] && data[key].value !== undefined) ? data[key].value : String(data[key])));
    });
    box.appendChild(dl);
    if (link) { var a = el("a", null, "详情 ›"); a.href = link; a.target = "_blank"; box.appendChild(a); }
    return box;
  }

  function render(m, nickname) {
    if (m.direction === "system") {
      if (m.kind === "error") return el("div", "note error", m.content + (m.error ? "（" + m.error + "）" : ""));
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
      content = card("模板消息 · " + m.template_id, m.data, m.url);
    } else if (m.kind === "subscribe") {
      content = card("订阅消息 · " + m.template_id, m.data, null);
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
      content = el("div", "bubble", (m.kind === "mass" ? "【群发】" : "") + text2);
    }
    row.appendChild(content);
    return row;
  }

  function phone(user) {
    var box = el("div", "phone");
    box.id = "phone-" + user.openid;
    var title = el("div", "title", user.nickname);
    title.appendChild(el("small", null, (user.subscribed ? "已关注 · " : "未关注 · ") + user.openid));
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
      api("POST", "/users/" + user.openid + "/messages", { type: "text", content: text }).then(refresh);
    });
    var tools = el("div", "tools");
    [["发图片", { type: "image" }], ["发位置", { type: "location", latitude: 45.75, longitude: 126.63, label: "模拟位置" }],
     ["点菜单", { type: "event", event: "CLICK", key: "REPAIR" }]].forEach(function (t) {
      var b = el("button", null, t[0]);
      b.type = "button";
      b.addEventListener("click", function () { api("POST", "/users/" + user.openid + "/messages", t[1]).then(refresh); });
      tools.appendChild(b);
    });
    box.appendChild(title);
    box.appendChild(chat);
    box.appendChild(form);
    box.appendChild(tools);
    return box;
  }

  function refresh() {
    api("GET", "/users").then(function (users) {
      var container = document.getElementById("phones");
      var empty = document.getElementById("empty");
      if (users.length && empty) empty.remove();
      users.forEach(function (user) {
        var box = document.getElementById("phone-" + user.openid);
        if (!box) { box = phone(user); container.appendChild(box); seen[user.openid] = 0; }
        box.querySelector(".title small").textContent = (user.subscribed ? "已关注 · " : "未关注 · ") + user.openid;
        api("GET", "/users/" + user.openid + "/inbox?all=1&after=" + seen[user.openid]).then(function (messages) {
          var chat = box.querySelector(".chat");
          messages.forEach(function (m) {
            seen[user.openid] = Math.max(seen[user.openid], m.id);
            var node = render(m, user.nickname);
            if (node) chat.appendChild(node);
          });
          if (messages.length) chat.scrollTop = chat.scrollHeight;
        });
      });
    });
  }

  document.getElementById("new-user").addEventListener("click", function () {
    api("POST", "/users", {}).then(refresh);
  });
  refresh();
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
