"""WeChat Pay v3 trade bill (交易账单): apply, then download (WECHAT.md §8; pay.weixin.qq.com
“申请交易账单” and “下载账单”).

- ``GET /v3/bill/tradebill?bill_date=YYYY-MM-DD[&bill_type=ALL|SUCCESS|REFUND][&tar_type=GZIP]``
  answers ``{hash_type: "SHA1", hash_value, download_url}``. A day's bill is ready from 10:00
  (Beijing, sandbox clock) the next day — before that, and for today, STATEMENT_CREATING; a
  day without payments or refunds has NO_STATEMENT_EXIST; only the last three months can be
  asked for. Once made, a day's bill never changes (WeChat Pay's bill is a snapshot).
- ``GET /v3/billdownload/file?token=…`` (signed like every request; the answer is *not*
  signed) returns the file for 5 minutes: gzip when asked, SHA1 over the uncompressed text.

The file is WeChat Pay's CSV: a header row, one row per payment (its success time) and per
refund (its acceptance time) with every field prefixed by a backtick, then the summary
header (总交易单数,…) and the summary row, lines ending in CRLF, UTF-8 with a BOM. Amounts
are in yuan; the fee is 0.60 % (negative on refunds), with 5 decimals as WeChat Pay prints it.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import secrets
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask import Blueprint, Response, request

from .core import BEIJING
from .errors import PayError
from .faults import pay_guard
from .pay import PAID_STATES, signed_response, verify_request

HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
          "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
          "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
FEE_RATE = Decimal("0.006")
READY_HOUR = 10                 # the bill of day D is ready at 10:00 on D+1 (Beijing)
KEEP_DAYS = 92                  # "仅支持三个月内的账单下载申请"
DOWNLOAD_TTL = 300              # seconds a download_url works
BILL_TYPES = ("ALL", "SUCCESS", "REFUND")


def _yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def _fee(fen: int) -> Decimal:
    """WeChat Pay's fee on an amount, rounded to the fen."""
    return (Decimal(fen) * FEE_RATE / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _local(rfc3339: str) -> str:
    return datetime.fromisoformat(rfc3339).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _field(value) -> str:
    # Fields are not quoted in WeChat Pay's file; keep a comma in free text from splitting a row.
    return "`" + str(value if value is not None else "").replace(",", "，").replace("\r", " ").replace("\n", " ")


def _day_bounds(day: date) -> tuple[float, float]:
    start = datetime(day.year, day.month, day.day, tzinfo=BEIJING).timestamp()
    return start, start + 86400


def build_bill(sb, mchid: str, day: date, bill_type: str) -> str | None:
    """The bill's text, or None when the day had no payment and no refund."""
    start, end = _day_bounds(day)
    rows, payments_fen, refunds_fen, orders_fen, applied_fen, fees = [], 0, 0, 0, 0, Decimal(0)
    if bill_type in ("ALL", "SUCCESS"):
        for order in sb.store.all("SELECT * FROM orders WHERE mchid = ? AND success_time IS NOT NULL", mchid):
            if order["trade_state"] not in PAID_STATES:
                continue
            paid = datetime.fromisoformat(order["success_time"]).timestamp()
            if not start <= paid < end:
                continue
            params = json.loads(order["params"])
            fee = _fee(order["total"])
            rows.append((paid, [
                _local(order["success_time"]), order["appid"], mchid, "0", "", order["transaction_id"],
                order["out_trade_no"], order["payer_openid"], "JSAPI", "SUCCESS", "OTHERS", "CNY",
                _yuan(order["total"]), "0.00", "0", "0", "0.00", "0.00", "", "", params.get("description", ""),
                params.get("attach", ""), f"{fee:.5f}", "0.60%", _yuan(order["total"]), "0.00", ""]))
            payments_fen += order["total"]
            orders_fen += order["total"]
            fees += fee
    if bill_type in ("ALL", "REFUND"):
        for refund in sb.store.all("SELECT r.*, o.appid, o.payer_openid, o.transaction_id, o.params AS order_params"
                                   " FROM refunds r JOIN orders o ON o.out_trade_no = r.out_trade_no"
                                   " WHERE r.mchid = ? AND r.created_at >= ? AND r.created_at < ?",
                                   mchid, start, end):
            params = json.loads(refund["order_params"])
            fee = -_fee(refund["refund"])
            rows.append((refund["created_at"], [
                _local(refund["create_time"]), refund["appid"], mchid, "0", "", refund["transaction_id"],
                refund["out_trade_no"], refund["payer_openid"], "JSAPI", "REFUND", "OTHERS", "CNY", "0.00",
                "0.00", refund["refund_id"], refund["out_refund_no"], _yuan(refund["refund"]), "0.00", "ORIGINAL",
                refund["status"], params.get("description", ""), params.get("attach", ""), f"{fee:.5f}", "0.60%",
                "0.00", _yuan(refund["refund"]), ""]))
            refunds_fen += refund["refund"]
            applied_fen += refund["refund"]
            fees += fee
    if not rows:
        return None
    rows.sort(key=lambda r: r[0])
    lines = [HEADER] + [",".join(_field(v) for v in values) for _, values in rows] + [SUMMARY_HEADER, ",".join(
        _field(v) for v in (len(rows), _yuan(payments_fen), _yuan(refunds_fen), "0.00", f"{fees:.5f}",
                            _yuan(orders_fen), _yuan(applied_fen)))]
    return "\ufeff" + "\r\n".join(lines) + "\r\n"


def apply(sb, mchid: str) -> dict:
    raw_date = request.args.get("bill_date", "")
    bill_type = request.args.get("bill_type") or "ALL"
    tar_type = request.args.get("tar_type")
    try:
        day = date.fromisoformat(raw_date) if len(raw_date) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise PayError(400, "PARAM_ERROR", "账单日期bill_date格式错误，应为yyyy-MM-dd")
    if bill_type not in BILL_TYPES:
        raise PayError(400, "PARAM_ERROR", "账单类型bill_type取值错误")
    if tar_type not in (None, "GZIP"):
        raise PayError(400, "PARAM_ERROR", "压缩类型tar_type取值错误")
    now = sb.beijing_now()
    today = now.date()
    if day > today:
        raise PayError(400, "PARAM_ERROR", "账单日期不能晚于今天")
    if day < today - timedelta(days=KEEP_DAYS):
        raise PayError(400, "PARAM_ERROR", "仅支持三个月内的账单下载申请")
    if day == today or (day == today - timedelta(days=1) and now.hour < READY_HOUR):
        raise PayError(400, "STATEMENT_CREATING", "账单生成中")
    key = f"{mchid}:{day.isoformat()}:{bill_type}"
    with sb.store.tx() as conn:
        stored = conn.execute("SELECT content FROM bills WHERE key = ?", (key,)).fetchone()
        if stored is None:
            text = build_bill(sb, mchid, day, bill_type)
            content = b"" if text is None else text.encode("utf-8")
            conn.execute("INSERT INTO bills (key, content, created_at) VALUES (?, ?, ?)", (key, content, sb.now()))
        else:
            content = stored["content"]
        if not content:
            raise PayError(400, "NO_STATEMENT_EXIST", "请求的账单文件不存在")
        token = secrets.token_urlsafe(36)
        conn.execute("INSERT INTO bill_downloads (token, bill_key, mchid, tar_type, expires_at) VALUES (?, ?, ?, ?, ?)",
                     (token, key, mchid, tar_type, sb.now() + DOWNLOAD_TTL))
    base = request.base_url[: request.base_url.index("/v3/")]
    url = f"{base}/v3/billdownload/file?token={token}" + ("&tartype=gzip" if tar_type == "GZIP" else "")
    return {"hash_type": "SHA1", "hash_value": hashlib.sha1(content).hexdigest(), "download_url": url}


def register(bp: Blueprint, sb) -> None:
    @bp.route("/v3/bill/tradebill")
    def tradebill():
        mchid = verify_request(sb)
        pay_guard(sb, "v3/bill/tradebill")
        return signed_response(sb, 200, apply(sb, mchid))

    @bp.route("/v3/billdownload/file")
    def billdownload():
        mchid = verify_request(sb)
        row = sb.store.one("SELECT * FROM bill_downloads WHERE token = ?", request.args.get("token", ""))
        if row is None or row["expires_at"] < sb.now():
            raise PayError(400, "INVALID_REQUEST", "参数错误：下载地址已失效，请重新申请账单")
        if row["mchid"] != mchid:
            raise PayError(403, "NO_AUTH", "权限异常")
        content = sb.store.one("SELECT content FROM bills WHERE key = ?", row["bill_key"])["content"]
        if row["tar_type"] == "GZIP":
            content = gzip.compress(content, mtime=0)
        # Downloads carry no WeChat Pay signature headers (clients skip verifying them).
        return Response(content, status=200, content_type="application/octet-stream")
