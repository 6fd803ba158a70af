"""The template registry: each kind of message the product sends, the WeChat template that
carries it, and values shaped to each key's rule.

WeChat refuses a template message (official account) or a subscribe message (mini-program)
whose ``data`` keys are not exactly the template's own, or whose values break their key's
type rule (47003), and an unknown template id (40037) — WECHAT.md §3, traps 14-15. Templates
picked from WeChat's category library since 2023 use typed keys (``thing1``, ``time2``,
``character_string3``, ``amount4``, ``phrase5``…); the type is the key without its number,
and each type has the rule WeChat documents for subscribe messages and category templates:

| type | rule (WeChat) | how a value is shaped here |
| --- | --- | --- |
| ``thing`` | ≤ 20 characters, no line breaks | whitespace collapsed, cut to 19 + "…" |
| ``character_string`` | ≤ 32 digits, letters or symbols (no Chinese) | whitespace dropped; refused if anything else is left out or it is longer |
| ``number`` | ≤ 32 digits, decimals allowed | refused unless it is a number |
| ``letter`` | ≤ 32 letters | refused otherwise |
| ``symbol`` | ≤ 5 symbols | refused otherwise |
| ``amount`` | a currency sign + ≤ 10 digits, decimals allowed, "元" may end it | ``Fen(192627)`` → ``¥1926.27`` (no thousands separator: digits only) |
| ``time`` | 24-hour time, date allowed before it, a range joined by "~" | Beijing time ``2026年12月02日 14:30``; a (start, end) pair → ``…~…`` |
| ``date`` | a date (年月日, or joined by - / .), time allowed after it, ranges by "~" | ``2026年12月02日`` |
| ``phrase`` | ≤ 5 Chinese characters | non-Chinese characters refused; longer refused |
| ``name`` | ≤ 10 Chinese characters, or ≤ 20 letters/symbols | cut to 10 (20) |
| ``phone_number`` | ≤ 17 digits and symbols | refused otherwise |
| ``car_number`` | ≤ 8; first and last may be Chinese, the rest letters or digits | refused otherwise |
| ``const``/``enum`` | one of the values approved with the template | refused when the template lists them and this is not one |

Old industry templates (``first``, ``keyword1…``, ``remark``) carry free text (cut to 200).

A value that cannot be shaped (a Chinese address mapped to a ``character_string`` key) is a
configuration error of that kind: ``TemplateDataError``, reported with the kind, the template
and the key, never sent to WeChat to be refused there.

Configuration. ``DEFAULT_OA`` and ``DEFAULT_MP`` are the demo's templates (realistic ones from
WeChat's utility categories, with their keys). A deployment replaces them per kind with the
``WECHAT_TEMPLATES`` and ``MINIAPP_TEMPLATES`` settings (JSON, read in app/config.py)::

    {"ticket_updated": {"template_id": "<id from the WeChat admin console>", "title": "工单进度通知",
                        "keys": {"character_string1": "ticket_no", "phrase2": "state",
                                 "thing3": "result", "time4": "updated_at"}},
     "payment_paid": "<id>",            # the demo's keys, another id (the same library template)
     "arrears_reminder": null}          # no template for this kind: that channel is not used

``keys`` maps each key of the template, in its order, to a field of the kind (``KINDS``).
Both settings may also be the whole object ``flask wechat templates --json`` prints
(``{"WECHAT_TEMPLATES": …, "MINIAPP_TEMPLATES": …}``): each takes its own part.
In production a kind still on a demo template id is refused at start-up (WeChat would answer
40037 to every send).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from app.clock import local_now


# --- values ---------------------------------------------------------------------------------------

class Fen(int):
    """An amount of money in fen (分): ``Fen(192627)`` is 1926.27 yuan."""

    def yuan(self) -> str:
        return f"{int(self) // 100}.{int(self) % 100:02d}" if self >= 0 else f"-{Fen(-self).yuan()}"


def _local(dt: datetime) -> datetime:
    """In the company's time zone (``TIMEZONE``, Beijing by default); naive values are UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return local_now(dt)


def time_text(dt: datetime) -> str:
    """``2026年12月02日 14:30`` in local (Beijing) time (WeChat's ``time`` format with a date)."""
    return _local(dt).strftime("%Y年%m月%d日 %H:%M")


def date_text(d: date | datetime) -> str:
    if isinstance(d, datetime):
        d = _local(d).date()
    return d.strftime("%Y年%m月%d日")


def display(value: Any) -> str:
    """A field's value as people read it (customer-service text, the console)."""
    if value is None:
        return "—"
    if isinstance(value, Fen):
        return f"{value.yuan()}元"
    if isinstance(value, datetime):
        return time_text(value)
    if isinstance(value, date):
        return date_text(value)
    if isinstance(value, tuple):
        start, end = value
        return display(start) + ("" if end is None else f" 至 {display(end)}")
    return str(value)


def encode_values(values: dict) -> dict:
    """Values as JSON (kept on the outbound row, so a resend sends the same)."""
    def enc(v):
        if isinstance(v, Fen):
            return {"$fen": int(v)}
        if isinstance(v, datetime):
            return {"$time": v.isoformat()}
        if isinstance(v, date):
            return {"$date": v.isoformat()}
        if isinstance(v, tuple):
            return {"$span": [enc(x) for x in v]}
        if isinstance(v, Decimal):
            return str(v)
        return v

    return {k: enc(v) for k, v in values.items()}


def decode_values(data: dict) -> dict:
    def dec(v):
        if isinstance(v, dict):
            if "$fen" in v:
                return Fen(v["$fen"])
            if "$time" in v:
                return datetime.fromisoformat(v["$time"])
            if "$date" in v:
                return date.fromisoformat(v["$date"])
            if "$span" in v:
                return tuple(dec(x) for x in v["$span"])
        return v

    return {k: dec(v) for k, v in (data or {}).items()}


# --- key types and their rules ---------------------------------------------------------------------

TYPED = ("thing", "character_string", "number", "letter", "symbol", "amount", "time", "date", "phrase", "name",
         "phone_number", "car_number", "const", "enum")
UNTYPED = ("first", "keyword", "remark")   # old industry templates: free text
THING_MAX, STRING_MAX, PHRASE_MAX, NAME_MAX_ZH, NAME_MAX_LATIN = 20, 32, 5, 10, 20
AMOUNT_DIGITS, PHONE_MAX, CAR_MAX, TEXT_MAX = 10, 17, 8, 200
TYPE_LABELS = {
    "thing": "事物", "character_string": "字符串", "number": "数字", "letter": "字母", "symbol": "符号",
    "amount": "金额", "time": "时间", "date": "日期", "phrase": "汉字", "name": "姓名", "phone_number": "电话",
    "car_number": "车牌", "const": "常量", "enum": "枚举值", "text": "文本",
}
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


class ShapeError(ValueError):
    """The value cannot be made to fit its key's rule (the reason is for people)."""


def key_type(key: str) -> str | None:
    """The type of a template key: ``character_string3`` → ``character_string``;
    ``first``/``keyword2``/``remark`` → ``text``; None for a key of no known type."""
    prefix = re.sub(r"\d+$", "", key)
    if prefix in TYPED:
        return prefix
    if prefix in UNTYPED:
        return "text"
    if prefix.startswith("enum_"):
        return "enum"
    return None


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", _CONTROL.sub(" ", text)).strip()


def _text(value: Any) -> str:
    if value is None:
        raise ShapeError("没有值")
    if isinstance(value, Fen):
        return value.yuan()
    if isinstance(value, (datetime, date, tuple)):
        return display(value)
    return str(value)


def _time_or_date(value: Any, fmt) -> str:
    if isinstance(value, tuple):
        start, end = value
        return fmt(start) if end is None else f"{fmt(start)}~{fmt(end)}"
    return fmt(value)


TIME_POINT = r"(?:(?:\d{4}年)?\d{1,2}月\d{1,2}日 ?|\d{4}[-/.]\d{1,2}[-/.]\d{1,2} )?\d{1,2}:\d{2}(?::\d{2})?"
DATE_POINT = (r"(?:\d{4}年\d{1,2}月(?:\d{1,2}日)?|\d{1,2}月\d{1,2}日|\d{4}[-/.]\d{1,2}(?:[-/.]\d{1,2})?"
              r"|\d{1,2}[-/.]\d{1,2})(?: ?\d{1,2}:\d{2}(?::\d{2})?)?")
TIME_RE = re.compile(rf"{TIME_POINT}(?:~{TIME_POINT})?")
DATE_RE = re.compile(rf"{DATE_POINT}(?:~{DATE_POINT})?")
# time and date keys: the values drawn from (a datetime, a date; or a (start, end) pair), how,
# and the text a typed value must match.
_MOMENTS = {"time": (datetime, time_text, TIME_RE, "时间格式（如 2026年12月02日 14:30）"),
            "date": (date, date_text, DATE_RE, "日期格式（如 2026年12月02日）")}


def shape(ktype: str | None, value: Any, *, allowed: tuple[str, ...] = ()) -> str:
    """``value`` made to fit a key of type ``ktype`` (WeChat's rule), or ``ShapeError``."""
    if ktype in _MOMENTS:
        kind, fmt, pattern, what = _MOMENTS[ktype]
        if isinstance(value, (kind, tuple)):
            return _time_or_date(value, fmt)
        text = _one_line(_text(value))
        if not pattern.fullmatch(text):
            raise ShapeError(f"“{text}”不是{what}")
        return text
    if ktype == "amount":
        if isinstance(value, Fen):
            text = value.yuan()
        elif isinstance(value, (int, Decimal)):
            text = f"{Decimal(value):.2f}"
        else:
            text = _one_line(_text(value)).replace(",", "")
            text = re.sub(r"^[¥￥]|元$", "", text)
        if not re.fullmatch(r"\d+(?:\.\d+)?", text):
            raise ShapeError(f"“{text}”不是金额")
        if len(text.replace(".", "")) > AMOUNT_DIGITS:
            raise ShapeError(f"金额“{text}”超过{AMOUNT_DIGITS}位数字")
        return f"¥{text}"
    text = _one_line(_text(value))
    if not text:
        raise ShapeError("没有值")
    if ktype == "thing":
        return text if len(text) <= THING_MAX else text[:THING_MAX - 1] + "…"
    if ktype == "character_string":
        compact = re.sub(r"\s+", "", text)
        if not re.fullmatch(r"[\x21-\x7e]+", compact):
            raise ShapeError(f"“{text}”含中文或其他非英文字符，字符串参数只能是数字、字母或符号")
        if len(compact) > STRING_MAX:
            raise ShapeError(f"“{text}”超过{STRING_MAX}个字符")
        return compact
    if ktype == "number":
        if not re.fullmatch(r"\d+(?:\.\d+)?", text) or len(text) > STRING_MAX:
            raise ShapeError(f"“{text}”不是{STRING_MAX}位以内的数字")
        return text
    if ktype == "letter":
        if not re.fullmatch(r"[A-Za-z]{1,32}", text):
            raise ShapeError(f"“{text}”不是{STRING_MAX}个以内的字母")
        return text
    if ktype == "symbol":
        if len(text) > 5 or re.search(rf"[0-9A-Za-z{_CJK}\s]", text):
            raise ShapeError(f"“{text}”不是5个以内的符号")
        return text
    if ktype == "phrase":
        if not re.fullmatch(rf"[{_CJK}]+", text):
            raise ShapeError(f"“{text}”不是纯汉字（汉字参数只能是5个以内的汉字）")
        if len(text) > PHRASE_MAX:
            raise ShapeError(f"“{text}”超过{PHRASE_MAX}个汉字")
        return text
    if ktype == "name":
        text = re.sub(r"[\d\s]", "", text)
        if not text:
            raise ShapeError("姓名没有汉字或字母")
        return text[:NAME_MAX_ZH] if re.search(rf"[{_CJK}]", text) else text[:NAME_MAX_LATIN]
    if ktype == "phone_number":
        compact = re.sub(r"\s+", "", text)
        if not re.fullmatch(r"[0-9+\-()]{1,17}", compact):
            raise ShapeError(f"“{text}”不是{PHONE_MAX}位以内的电话号码")
        return compact
    if ktype == "car_number":
        compact = re.sub(r"\s+", "", text).upper()
        if len(compact) > CAR_MAX or not re.fullmatch(rf"[{_CJK}]?[A-Z0-9]+[{_CJK}]?", compact):
            raise ShapeError(f"“{text}”不是车牌号")
        return compact
    if ktype in ("const", "enum"):
        if allowed and text not in allowed:
            raise ShapeError(f"“{text}”不是模板审核通过的取值（{'、'.join(allowed)}）")
        return text
    # text (first/keywordN/remark) and keys of no known type
    return text if len(text) <= TEXT_MAX else text[:TEXT_MAX - 1] + "…"


# --- kinds ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    name: str
    label: str                          # what staff call it, e.g. "工单进度通知"
    audience: str                       # "staff" or "resident"
    fields: tuple[tuple[str, str], ...]  # (field, label), in reading order
    senders: str = ""                   # where it is sent from (documentation, the console)

    def label_of(self, name: str) -> str:
        return dict(self.fields).get(name, name)


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("task_assigned", "工单派发提醒", "staff", (
        ("ticket_no", "工单编号"), ("category", "工单类型"), ("address", "报修地址"), ("problem", "问题描述"),
        ("priority", "紧急程度"), ("finish_by", "完成时限")), "jobs.notify.task_assigned"),
    Kind("emergency_alert", "紧急工单提醒", "staff", (
        ("ticket_no", "工单编号"), ("category", "工单类型"), ("address", "报修地址"), ("problem", "问题描述"),
        ("assignee", "处理人"), ("reported_at", "报修时间")), "jobs.notify.emergency_alert"),
    Kind("ticket_updated", "工单进度通知", "resident", (
        ("ticket_no", "工单编号"), ("state", "工单状态"), ("result", "处理结果"), ("updated_at", "更新时间")),
        "jobs.notify.ticket_updated"),
    Kind("ticket_dispatched", "维修派单通知", "resident", (
        ("ticket_no", "工单编号"), ("crew", "维修班组"), ("handler", "维修人员"), ("expected_by", "预计响应"),
        ("note", "说明")), "jobs.resident_pushes.push_ticket_change (assigned, forwarded, reopened)"),
    Kind("low_rating_alert", "服务差评提醒", "staff", (
        ("ticket_no", "工单编号"), ("score", "评分"), ("comment", "用户评语"), ("assignee", "处理人"),
        ("rated_at", "评价时间")), "jobs.resident_pushes.low_rating_alert"),
    Kind("deadline_reminder", "工单超时提醒", "staff", (
        ("ticket_no", "工单编号"), ("address", "报修地址"), ("level", "提醒类型"), ("deadline_type", "时限类型"),
        ("deadline", "截止时间"), ("assignee", "处理人")), "jobs.reminders.send_deadline_reminder (before, due)"),
    Kind("deadline_escalation", "工单催办提醒", "staff", (
        ("ticket_no", "工单编号"), ("address", "报修地址"), ("assignee", "处理人"), ("overdue", "超时类型"),
        ("deadline", "截止时间")), "jobs.reminders.send_deadline_reminder (overdue)"),
    Kind("cluster_alert", "疑似停热预警", "staff", (
        ("place", "预警区域"), ("reports", "报修数量"), ("first_report_at", "首次报修"),
        ("last_report_at", "最近报修"), ("advice", "处理建议")), "jobs.notify.cluster_alert"),
    Kind("outage_notice", "停热通知", "resident", (
        ("notice_type", "通知类型"), ("area", "停热区域"), ("period", "停热时间"), ("reason", "停热原因")),
        "jobs.broadcast (停热公告: created, updated, started, cancelled)"),
    Kind("outage_restored", "恢复供热通知", "resident", (
        ("area", "供热区域"), ("restored_at", "恢复时间"), ("tip", "温馨提示")),
        "jobs.broadcast (停热公告: restored), jobs.notify.outage_restored"),
    Kind("announcement", "公告通知", "resident", (
        ("title", "公告标题"), ("summary", "公告内容"), ("published_at", "发布时间")), "jobs.broadcast (公告)"),
    Kind("arrears_reminder", "缴费提醒", "resident", (
        ("item", "缴费项目"), ("tip", "温馨提示"), ("reminded_at", "提醒时间")), "jobs.broadcast (催缴)"),
    Kind("payment_paid", "缴费成功通知", "resident", (
        ("account_no", "户号"), ("amount", "缴费金额"), ("item", "缴费项目"), ("paid_at", "缴费时间"),
        ("out_trade_no", "订单号"), ("tip", "备注")), "jobs.pay_notices.payment_paid"),
    Kind("refund_result", "退款通知", "resident", (
        ("account_no", "户号"), ("amount", "退款金额"), ("status", "退款状态"), ("at", "处理时间"),
        ("received", "退回账户"), ("out_trade_no", "原订单号"), ("reason", "退款原因")),
        "jobs.pay_notices.refund_result"),
    Kind("chat_invite", "客服回复提醒", "resident", (
        ("question", "咨询内容"), ("reply", "回复内容"), ("replied_at", "回复时间")), "jobs.chat.chat_invite"),
)}


# --- templates ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    """One template of the account, as WeChat lists it, with the kind field each key shows."""

    template_id: str
    title: str
    keys: tuple[tuple[str, str], ...]        # (key, field), in the template's order
    enums: dict = field(default_factory=dict, hash=False, compare=False)  # key -> approved values

    def key_names(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.keys)

    def content(self, kind: Kind) -> str:
        """The template's content as WeChat lists it: ``工单编号:{{character_string1.DATA}}\\n…``."""
        return "".join(f"{kind.label_of(f)}:{{{{{k}.DATA}}}}\n" for k, f in self.keys)

    def render(self, kind: Kind, values: dict) -> dict:
        """``data`` for WeChat: every key of the template, each value shaped to its rule."""
        data = {}
        for key, name in self.keys:
            try:
                data[key] = {"value": shape(key_type(key), values.get(name),
                                            allowed=tuple(self.enums.get(key) or ()))}
            except ShapeError as exc:
                raise TemplateDataError(kind.name, self.template_id, key, name, str(exc)) from None
        return data


class TemplateDataError(ValueError):
    """A kind's values cannot fill its template (a configuration error of that kind)."""

    def __init__(self, kind: str, template_id: str, key: str, field_name: str, reason: str):
        self.kind, self.template_id, self.key, self.field, self.reason = kind, template_id, key, field_name, reason
        label = KINDS[kind].label if kind in KINDS else kind
        super().__init__(f"{label}（{kind}）模板 {template_id} 的 {key}（字段 {field_name}）：{reason}")


def _t(template_id: str, title: str, *keys: tuple[str, str]) -> Template:
    return Template(template_id, title, tuple(keys))


# Official-account template messages (类目模板), one per kind.
DEFAULT_OA: dict[str, Template] = {
    "task_assigned": _t("TPL_TASK_ASSIGNED", "工单派发提醒", ("character_string1", "ticket_no"),
                        ("thing2", "category"), ("thing3", "address"), ("thing4", "problem"),
                        ("phrase5", "priority"), ("time6", "finish_by")),
    "emergency_alert": _t("TPL_EMERGENCY_ALERT", "紧急工单提醒", ("character_string1", "ticket_no"),
                          ("thing2", "address"), ("thing3", "problem"), ("name4", "assignee"),
                          ("time5", "reported_at")),
    "ticket_updated": _t("TPL_TICKET_PROGRESS", "工单进度通知", ("character_string1", "ticket_no"),
                         ("phrase2", "state"), ("thing3", "result"), ("time4", "updated_at")),
    "ticket_dispatched": _t("TPL_TICKET_DISPATCHED", "维修派单通知", ("character_string1", "ticket_no"),
                            ("thing2", "crew"), ("name3", "handler"), ("time4", "expected_by"), ("thing5", "note")),
    "low_rating_alert": _t("TPL_LOW_RATING", "服务差评提醒", ("character_string1", "ticket_no"),
                           ("number2", "score"), ("thing3", "comment"), ("name4", "assignee"), ("time5", "rated_at")),
    "deadline_reminder": _t("TPL_DEADLINE_REMINDER", "工单超时提醒", ("character_string1", "ticket_no"),
                            ("thing2", "address"), ("phrase3", "level"), ("phrase4", "deadline_type"),
                            ("time5", "deadline")),
    "deadline_escalation": _t("TPL_DEADLINE_ESCALATION", "工单催办提醒", ("character_string1", "ticket_no"),
                              ("thing2", "address"), ("name3", "assignee"), ("phrase4", "overdue"),
                              ("time5", "deadline")),
    "cluster_alert": _t("TPL_CLUSTER_ALERT", "疑似停热预警", ("thing1", "place"), ("number2", "reports"),
                        ("time3", "first_report_at"), ("time4", "last_report_at"), ("thing5", "advice")),
    "outage_notice": _t("TPL_OUTAGE_NOTICE", "停热通知", ("phrase1", "notice_type"), ("thing2", "area"),
                        ("time3", "period"), ("thing4", "reason")),
    "outage_restored": _t("TPL_OUTAGE_RESTORED", "恢复供热通知", ("thing1", "area"), ("time2", "restored_at"),
                          ("thing3", "tip")),
    "announcement": _t("TPL_ANNOUNCEMENT", "公告通知", ("thing1", "title"), ("thing2", "summary"),
                       ("time3", "published_at")),
    "arrears_reminder": _t("TPL_BILL_REMINDER", "缴费提醒", ("thing1", "item"), ("thing2", "tip"),
                           ("time3", "reminded_at")),
    "payment_paid": _t("TPL_PAYMENT_PAID", "缴费成功通知", ("character_string1", "account_no"),
                       ("amount2", "amount"), ("thing3", "item"), ("time4", "paid_at"), ("thing5", "tip")),
    "refund_result": _t("TPL_REFUND_RESULT", "退款通知", ("character_string1", "out_trade_no"),
                        ("amount2", "amount"), ("phrase3", "status"), ("time4", "at"), ("thing5", "reason")),
    "chat_invite": _t("TPL_CHAT_REPLY", "客服回复提醒", ("thing1", "question"), ("thing2", "reply"),
                      ("time3", "replied_at")),
}

# Mini-program subscribe messages (one-time consent per send), for what residents hear.
DEFAULT_MP: dict[str, Template] = {
    "ticket_updated": _t("MP_TPL_TICKET_PROGRESS", "工单进度通知", ("character_string1", "ticket_no"),
                         ("phrase2", "state"), ("thing3", "result"), ("time4", "updated_at")),
    "ticket_dispatched": _t("MP_TPL_TICKET_DISPATCHED", "维修派单通知", ("character_string1", "ticket_no"),
                            ("thing2", "crew"), ("name3", "handler"), ("time4", "expected_by")),
    "outage_notice": _t("MP_TPL_OUTAGE_NOTICE", "停热通知", ("thing1", "area"), ("time2", "period"),
                        ("thing3", "reason"), ("phrase4", "notice_type")),
    "outage_restored": _t("MP_TPL_OUTAGE_RESTORED", "恢复供热通知", ("thing1", "area"), ("time2", "restored_at"),
                          ("thing3", "tip")),
    "announcement": _t("MP_TPL_ANNOUNCEMENT", "公告通知", ("thing1", "title"), ("thing2", "summary"),
                       ("date3", "published_at")),
    "arrears_reminder": _t("MP_TPL_BILL_REMINDER", "缴费提醒", ("thing1", "item"), ("thing2", "tip")),
    "payment_paid": _t("MP_TPL_PAYMENT_PAID", "缴费成功通知", ("character_string1", "account_no"),
                       ("amount2", "amount"), ("time3", "paid_at"), ("thing4", "tip")),
    "refund_result": _t("MP_TPL_REFUND_RESULT", "退款通知", ("amount1", "amount"), ("phrase2", "status"),
                        ("time3", "at"), ("character_string4", "out_trade_no")),
    "chat_invite": _t("MP_TPL_CHAT_REPLY", "客服回复提醒", ("thing1", "question"), ("thing2", "reply"),
                      ("time3", "replied_at")),
}
DEMO_IDS = {t.template_id for t in (*DEFAULT_OA.values(), *DEFAULT_MP.values())}


class TemplateConfigError(ValueError):
    """WECHAT_TEMPLATES / MINIAPP_TEMPLATES cannot be used (every problem, one per line)."""


@dataclass(frozen=True)
class Registry:
    oa: dict[str, Template]      # kind -> official-account template message
    mp: dict[str, Template]      # kind -> mini-program subscribe message

    def template(self, kind: str) -> Template | None:
        return self.oa.get(kind)

    def subscribe(self, kind: str) -> Template | None:
        return self.mp.get(kind)

    def subscribe_ids(self) -> set[str]:
        return {t.template_id for t in self.mp.values()}

    def listing(self) -> list[dict]:
        """Every kind with its two templates, for people (console, ``flask wechat templates``)."""
        rows = []
        for kind in KINDS.values():
            row = {"kind": kind.name, "label": kind.label, "audience": kind.audience, "senders": kind.senders}
            for channel, table in (("template", self.oa), ("subscribe", self.mp)):
                t = table.get(kind.name)
                row[channel] = None if t is None else {
                    "template_id": t.template_id, "title": t.title, "demo": t.template_id in DEMO_IDS,
                    "keys": [{"key": k, "type": key_type(k), "type_label": TYPE_LABELS.get(key_type(k) or "", "?"),
                              "field": f, "label": kind.label_of(f)} for k, f in t.keys]}
            rows.append(row)
        return rows

    def account_templates(self) -> list[dict]:
        """The templates as WeChat's account would list them, for the sandbox to register:
        ``{template_id, app, type, title, content, example, enums}``, once per template id."""
        out, seen = [], set()
        for app_kind, kind_type, table in (("oa", "template", self.oa), ("mp", "subscribe", self.mp)):
            for kind_name, t in table.items():
                if (app_kind, t.template_id) in seen:
                    continue
                seen.add((app_kind, t.template_id))
                kind = KINDS[kind_name]
                out.append({"template_id": t.template_id, "app": app_kind, "type": kind_type, "title": t.title,
                            "content": t.content(kind), "example": _example(t, kind),
                            "enums": {k: list(v) for k, v in t.enums.items()}})
        return out


_AT = datetime(2026, 12, 2, 6, 30, tzinfo=timezone.utc)   # 2026年12月02日 14:30 in Beijing
FIELD_EXAMPLES = {
    "ticket_no": "GD20261202-0001", "category": "报修·不热/停暖", "address": "和平小区3号楼2单元501",
    "problem": "暖气片不热，室温14度", "priority": "特急", "finish_by": _AT, "assignee": "张师傅", "reported_at": _AT,
    "state": "已办结", "result": "已更换阀门，恢复供热", "updated_at": _AT, "level": "即将超时",
    "deadline_type": "办结时限", "deadline": _AT, "overdue": "办结超时", "place": "和平小区", "reports": 12,
    "first_report_at": _AT, "last_report_at": _AT, "advice": "请核实，如确为停热请在后台转为停热",
    "notice_type": "计划停热", "area": "和平小区3号楼", "period": (_AT, _AT), "reason": "管网抢修",
    "restored_at": _AT, "tip": "如家中仍不热，请及时报修", "title": "关于调整供热时间的通知",
    "summary": "自12月5日起延长供热时间", "published_at": _AT, "item": "供热费", "reminded_at": _AT,
    "account_no": "10100001", "amount": Fen(192627), "paid_at": _AT, "out_trade_no": "HP202612021430001234",
    "status": "退款成功", "at": _AT, "received": "招商银行储蓄卡(1234)",
    "crew": "和平一班", "handler": "张志强", "expected_by": _AT, "note": "已安排维修人员，请保持电话畅通",
    "score": 2, "comment": "等了很久才来", "rated_at": _AT,
    # where one field name reads differently in another kind
    "arrears_reminder.tip": "已过缴费期限，逾期将加收滞纳金", "payment_paid.tip": "点击查看电子收据",
    "payment_paid.item": "2026-2027供暖季供热费", "refund_result.reason": "重复缴费退款",
    "outage_notice.period": (_AT, _AT.replace(hour=10)),
    "question": "暖气片不热，阀门已打开", "reply": "客服已回复您的咨询，请进入公众号查看", "replied_at": _AT,
}


def _example(t: Template, kind: Kind) -> str:
    """An example of the filled template, as WeChat lists one (``工单编号:GD20261202-0001``)."""
    lines = []
    for k, f in t.keys:
        allowed = tuple(t.enums.get(k) or ())
        try:
            sample = FIELD_EXAMPLES.get(f"{kind.name}.{f}", FIELD_EXAMPLES.get(f, "示例"))
            value = allowed[0] if allowed else shape(key_type(k), sample)
        except ShapeError:
            value = "示例"
        lines.append(f"{kind.label_of(f)}:{value}\n")
    return "".join(lines)


def _parse(kind_name: str, spec, default: Template | None, where: str) -> tuple[Template | None, list[str]]:
    """One kind's override: an id, an object, or null (no template)."""
    if spec is None or spec == "":
        return None, []
    if isinstance(spec, str):
        if default is None:
            return None, [f"{where}.{kind_name}: 只给了模板ID，没有可沿用的参数（keys） / an id alone, but no default "
                          "keys to reuse: give {\"template_id\", \"keys\"}"]
        return Template(spec, default.title, default.keys, default.enums), []
    if not isinstance(spec, dict):
        return None, [f"{where}.{kind_name}: 须为模板ID、对象或 null / must be an id, an object or null"]
    problems = []
    template_id = spec.get("template_id")
    if not isinstance(template_id, str) or not template_id.strip():
        return None, [f"{where}.{kind_name}.template_id: 未设置 / missing"]
    keys = spec.get("keys")
    if keys is None and default is not None:
        keys = dict(default.keys)
    if not isinstance(keys, dict) or not keys:
        return None, [f"{where}.{kind_name}.keys: 须为 {{模板参数: 字段}} 对象 / must map each key to a field"]
    fields = dict(KINDS[kind_name].fields)
    for key, name in keys.items():
        if not re.fullmatch(r"[a-z_]+\d*", str(key)):
            problems.append(f"{where}.{kind_name}.keys.{key}: 不是微信模板参数名 / not a template key")
        elif key_type(key) is None:
            problems.append(f"{where}.{kind_name}.keys.{key}: 未知的参数类型 / unknown key type "
                            f"(known: {', '.join(TYPED)}, first/keywordN/remark)")
        if name not in fields:
            problems.append(f"{where}.{kind_name}.keys.{key}: 未知字段 {name!r}（可用：{', '.join(fields)}） / "
                            f"unknown field")
    enums = spec.get("enums") or {}
    if not isinstance(enums, dict) or any(not isinstance(v, list) for v in enums.values()):
        problems.append(f"{where}.{kind_name}.enums: 须为 {{参数: [取值…]}} / must map keys to lists of values")
        enums = {}
    title = spec.get("title") or (default.title if default else KINDS[kind_name].label)
    return Template(template_id.strip(), str(title), tuple((str(k), str(v)) for k, v in keys.items()),
                    {k: tuple(v) for k, v in enums.items()}), problems


def _merge(defaults: dict[str, Template], overrides, where: str) -> tuple[dict[str, Template], list[str]]:
    table = dict(defaults)
    problems: list[str] = []
    if isinstance(overrides, dict) and where in overrides:
        overrides = overrides[where]  # the whole file `flask wechat templates --json` prints
    if overrides in (None, ""):
        return table, problems
    if not isinstance(overrides, dict):
        return table, [f"{where}: 须为 JSON 对象 {{消息类型: 模板}} / must be a JSON object {{kind: template}}"]
    for kind_name, spec in overrides.items():
        if kind_name not in KINDS:
            problems.append(f"{where}.{kind_name}: 未知的消息类型（可用：{', '.join(KINDS)}） / unknown kind")
            continue
        template, found = _parse(kind_name, spec, defaults.get(kind_name), where)
        problems += found
        if template is None:
            table.pop(kind_name, None)
        else:
            table[kind_name] = template
    # One template id is one template: kinds sharing it must fill the same keys.
    by_id: dict[str, tuple[str, tuple]] = {}
    for kind_name, t in table.items():
        first = by_id.setdefault(t.template_id, (kind_name, t.key_names()))
        if first[1] != t.key_names():
            problems.append(f"{where}: {first[0]} 与 {kind_name} 使用同一模板 {t.template_id}，但参数不同 / "
                            "two kinds share a template id with different keys")
    return table, problems


def build_registry(config) -> Registry:
    """The registry from the settings (``WECHAT_TEMPLATES``, ``MINIAPP_TEMPLATES``): the demo
    defaults replaced per kind. Raises ``TemplateConfigError`` naming every problem; in
    production, also every kind still on a demo template id."""
    oa, problems = _merge(DEFAULT_OA, config.get("WECHAT_TEMPLATES"), "WECHAT_TEMPLATES")
    mp, more = _merge(DEFAULT_MP, config.get("MINIAPP_TEMPLATES"), "MINIAPP_TEMPLATES")
    problems += more
    if config.get("ENV_NAME") == "production":
        for where, table in (("WECHAT_TEMPLATES", oa), ("MINIAPP_TEMPLATES", mp)):
            for kind_name, t in table.items():
                if t.template_id in DEMO_IDS:
                    problems.append(f"{where}.{kind_name}: 仍是演示模板ID {t.template_id}，正式账号里没有它（微信会以40037"
                                    "拒绝每一条） / still the demo template id: set the real one, or null for none")
    if problems:
        raise TemplateConfigError("消息模板配置有误 / the message template settings cannot be used:\n"
                                  + "\n".join(f"  - {p}" for p in problems))
    return Registry(oa, mp)


def registry(app=None) -> Registry:
    """This app's registry, built once from its settings (again if a test swaps them)."""
    from flask import current_app

    app = app or current_app
    oa, mp = app.config.get("WECHAT_TEMPLATES"), app.config.get("MINIAPP_TEMPLATES")
    found = app.extensions.get("wechat_templates")
    if found is None or found[0] is not oa or found[1] is not mp:
        found = (oa, mp, build_registry(app.config))
        app.extensions["wechat_templates"] = found
    return found[2]


# --- problems WeChat reported, per kind (for the console and the logs) ------------------------------

PROBLEMS_KEY = "wechat:template-problems"


def record_problem(redis, channel: str, kind: str, template_id: str | None, errcode: int | None,
                   message: str, now: datetime) -> None:
    """Remember the latest refusal (or shaping error) of this kind's template on this channel."""
    redis.hset(PROBLEMS_KEY, f"{channel}:{kind}", json.dumps(
        {"template_id": template_id, "errcode": errcode, "message": message[:300], "at": now.isoformat()},
        ensure_ascii=False))


def clear_problems(redis, pairs) -> None:
    """A send of these (channel, kind) went through: their problem, if any, is over."""
    fields = [f"{c}:{k}" for c, k in pairs]
    if fields:
        redis.hdel(PROBLEMS_KEY, *fields)


def problems(redis) -> dict[tuple[str, str], dict]:
    out = {}
    for name, raw in (redis.hgetall(PROBLEMS_KEY) or {}).items():
        channel, _, kind = (name.decode() if isinstance(name, bytes) else name).partition(":")
        out[(channel, kind)] = json.loads(raw)
    return out
