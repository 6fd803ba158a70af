/* 会话 (/console/chats): poll for changes, redraw the lists and the transcript, keep the reply
   box in step with WeChat's window, quick replies from the knowledge base. */
(function () {
  var C = window.CHAT;
  if (!C) return;
  var live = document.getElementById("chat-live"), liveText = document.getElementById("chat-live-text");
  var lists = document.getElementById("chat-lists"), thread = document.getElementById("chat-thread");

  function scrollDown() { if (thread) thread.scrollTop = thread.scrollHeight; }
  scrollDown();

  function setWindow(w) {
    var box = document.getElementById("chat-reply-box"), reason = document.getElementById("chat-window-reason");
    if (!box || !w) return;
    box.disabled = !w.open;
    if (reason) {
      reason.hidden = !!w.open;
      document.getElementById("chat-window-text").textContent = w.reason || "";
    }
    var left = document.getElementById("chat-left");
    if (left) left.textContent = w.open ? "本条居民消息后还可发送 " + w.left + " 条" : "";
  }

  function poll() {
    var url = C.live + "?stamp=" + encodeURIComponent(C.stamp) + (C.id ? "&id=" + C.id : "");
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) {
        live.classList.add("on"); liveText.textContent = "实时";
        C.stamp = data.stamp;
        if (data.same) return;
        lists.innerHTML = data.lists;
        if (thread && data.thread) {
          var atBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 40;
          thread.innerHTML = data.thread;
          if (atBottom) scrollDown();
        }
        setWindow(data.window);
        var st = document.getElementById("chat-status");
        if (st && data.status && st.dataset.status && st.dataset.status !== data.status) location.reload();
        Object.keys(data.metrics || {}).forEach(function (k) {
          var el = document.querySelector('[data-m="' + k + '"]');
          if (el) el.textContent = data.metrics[k];
        });
      })
      .catch(function () { live.classList.remove("on"); liveText.textContent = "连接中断，重试中"; })
      .then(function () { setTimeout(poll, C.poll); });
  }
  setTimeout(poll, C.poll);

  var q = document.getElementById("chat-faq-q"), list = document.getElementById("chat-faq");
  var text = document.getElementById("chat-text"), timer = null;
  function searchFaq() {
    fetch(C.faq + "?q=" + encodeURIComponent(q.value), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        list.innerHTML = "";
        data.items.forEach(function (item) {
          var li = document.createElement("li"), b = document.createElement("button");
          b.type = "button"; b.className = "link"; b.textContent = item.question;
          var p = document.createElement("div"); p.className = "small muted"; p.textContent = item.answer;
          b.addEventListener("click", function () { if (text) { text.value = item.answer; text.focus(); } });
          li.appendChild(b); li.appendChild(p); list.appendChild(li);
        });
        if (!data.items.length) list.innerHTML = '<li class="muted small">没有匹配的条目</li>';
      });
  }
  if (q) {
    q.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(searchFaq, 250); });
    document.getElementById("chat-quick").addEventListener("toggle", function () { if (this.open) searchFaq(); });
  }
  var form = document.getElementById("chat-reply");
  if (text && form) text.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
})();
