/* WeChat sandbox: a stand-in of WeChat's in-app WeixinJSBridge (getBrandWCPayRequest only).
   Served by the sandbox at <sandbox>/jsbridge.js; see wechat/sandbox/jsbridge.py. */
(function () {
  "use strict";
  if (window.WeixinJSBridge) { return; }
  var script = document.currentScript;
  var base = script ? script.src.replace(/\/jsbridge\.js(\?.*)?$/, "") : "";
  var PREFIX = "get_brand_wcpay_request";

  function post(path, params) {
    // text/plain: a simple request, no CORS preflight (the sandbox answers with ACAO: *)
    return fetch(base + path, { method: "POST", body: JSON.stringify(params),
                                headers: { "Content-Type": "text/plain;charset=UTF-8" } })
      .then(function (r) { return r.json(); });
  }

  function yuan(fen) { return (fen / 100).toFixed(2); }

  function sheet(order, onPay, onCancel) {
    var mask = document.createElement("div");
    mask.setAttribute("data-testid", "wxpay-sheet");
    mask.style.cssText = "position:fixed;inset:0;background:rgba(0,0,0,.5);z-index:99999;display:flex;" +
      "align-items:flex-end;font-family:-apple-system,'PingFang SC','Microsoft YaHei',sans-serif";
    var box = document.createElement("div");
    box.style.cssText = "background:#fff;width:100%;border-radius:12px 12px 0 0;padding:20px 16px 24px;" +
      "box-sizing:border-box;text-align:center;color:#111";
    box.innerHTML = '<div style="font-size:16px;color:#666">微信支付（沙箱）</div>' +
      '<div data-testid="wxpay-desc" style="font-size:16px;margin:10px 0"></div>' +
      '<div data-testid="wxpay-amount" style="font-size:32px;font-weight:600;margin:6px 0 20px"></div>';
    box.querySelector("[data-testid=wxpay-desc]").textContent = order.description;
    box.querySelector("[data-testid=wxpay-amount]").textContent = "¥" + yuan(order.total);
    function button(text, testid, primary) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = text;
      b.setAttribute("data-testid", testid);
      b.style.cssText = "display:block;width:100%;min-height:48px;margin-top:10px;border:0;border-radius:8px;" +
        "font-size:17px;" + (primary ? "background:#07c160;color:#fff" : "background:#f2f2f2;color:#111");
      box.appendChild(b);
      return b;
    }
    var pay = button("支付", "wxpay-confirm", true);
    var cancel = button("取消", "wxpay-cancel", false);
    pay.onclick = function () { pay.disabled = cancel.disabled = true; pay.textContent = "支付中…"; onPay(close); };
    cancel.onclick = function () { close(); onCancel(); };
    function close() { if (mask.parentNode) { mask.parentNode.removeChild(mask); } }
    mask.appendChild(box);
    document.body.appendChild(mask);
  }

  function getBrandWCPayRequest(params, callback) {
    var done = function (result, desc) {
      var answer = { err_msg: PREFIX + ":" + result };
      if (desc) { answer.err_desc = desc; }
      if (typeof callback === "function") { callback(answer); }
    };
    post("/jsbridge/check", params).then(function (checked) {
      if (!checked.ok) { done("fail", checked.err_desc); return; }
      sheet(checked, function (close) {
        post("/jsbridge/pay", params).then(function (paid) {
          close();
          if (paid.ok) { done("ok"); } else { done("fail", paid.err_desc); }
        }, function () { close(); done("fail", "网络错误"); });
      }, function () { done("cancel"); });
    }, function () { done("fail", "网络错误"); });
  }

  window.WeixinJSBridge = {
    invoke: function (name, params, callback) {
      if (name === "getBrandWCPayRequest") { getBrandWCPayRequest(params || {}, callback); return; }
      if (typeof callback === "function") { callback({ err_msg: name + ":fail_not_supported_in_sandbox" }); }
    },
    on: function () {},
    call: function () {}
  };

  function ready() {
    var event;
    try { event = new Event("WeixinJSBridgeReady"); }
    catch (e) { event = document.createEvent("Event"); event.initEvent("WeixinJSBridgeReady", true, true); }
    document.dispatchEvent(event);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", ready); }
  else { setTimeout(ready, 0); }
})();
