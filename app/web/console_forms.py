"""Inline validation for every console form: a refused POST shows its page again, in the
layout, with each field's Chinese message next to the field and what the person typed kept.

How: ``FORM_PAGES`` names, for each form's POST endpoint, the page that shows the form (a GET
endpoint taking the same URL values). When a service refuses the input (a ``DomainError``),
the transaction is rolled back and that page's view renders again inside the same request,
answered with the error's status (400/409/422). Templates ask, per form:

- ``form_alert(ep)``: "未保存，请按提示修改" at the top of the form when the fields carry the
  details (never the same message twice); a refusal naming no field is shown once at the top
  of the page by the layout (``page_refusal``);
- ``field_error(name, ep)``: the message of one field, next to it;
- ``form_value(name, default, ep)``: what was posted to ``ep`` for that field, else ``default``.

A refusal of a POST without a form page, or of a GET, is shown in the layout (menu kept),
with field messages under their Chinese field names — never a bare page.
"""
from __future__ import annotations

import inspect

from flask import current_app, g, render_template, request
from markupsafe import Markup, escape

from app.errors import DomainError
from app.web import auth
from app.web.error_pages import common_page, install_error_pages
from app.web.console_base import bp

# POST endpoint -> the page (GET endpoint, same URL values) that holds its form.
FORM_PAGES = {
    "console.ticket_close": "console.ticket_detail",
    "console.ticket_visit": "console.ticket_detail",
    "console.ticket_reopen": "console.ticket_detail",
    "console.ticket_cancel": "console.ticket_detail",
    "console.ticket_reassign": "console.ticket_detail",
    "console.announcement_create": "console.announcement_new",
    "console.announcement_resend": "console.announcement_detail",
    "console.announcement_retry_failed": "console.announcement_detail",
    "console.announcement_action": "console.announcement_detail",
    "console.outage_create": "console.outage_new",
    "console.outage_update": "console.outage_edit",
    "console.outage_restore": "console.outage_edit",
    "console.outage_cancel": "console.outage_edit",
    "console.cluster_convert": "console.clusters",
    "console.faq_create": "console.faq_edit",
    "console.faq_update": "console.faq_edit",
    "console.desk_ticket_create": "console.desk_ticket_new",
    "console.sla_update": "console.sla_page",
    "console.evidence_save": "console.evidence_page",
    "console.evidence_delete": "console.evidence_page",
    "console.settings_update": "console.settings_page",
}

# Field names as staff know them, for refusals shown away from their form.
FIELD_LABELS = {
    "title": "标题", "body": "内容", "reason": "原因", "note": "说明", "final_answer": "答复", "result": "回访结果",
    "assignee": "班组/人员", "areas": "停热范围", "audience_filter": "发送区域", "audience": "发送对象",
    "scheduled_at": "发送时间", "expected_end_at": "预计恢复时间", "starts_at": "开始时间", "kind": "停热类型",
    "question": "问题", "answer": "答案", "category": "分类", "keywords": "关键词", "description": "问题描述",
    "type": "工单类型", "source": "来源", "priority": "优先级", "caller_phone": "来电号码", "caller_name": "来电人",
    "household_id": "住户", "date": "日期", "date_from": "开始日期", "date_to": "结束日期", "bills": "账单",
    "respond_minutes": "响应时限", "finish_minutes": "完成时限", "min_photos": "照片张数", "rate": "发送速度",
}


def _posted_to(endpoints) -> bool:
    return request.method == "POST" and request.endpoint in endpoints and getattr(g, "form_refusal", None) is not None


def field_error(name: str, *endpoints: str) -> Markup:
    if not _posted_to(endpoints):
        return Markup("")
    messages = (g.form_refusal.fields or {}).get(name)
    if not messages:
        return Markup("")
    text = "；".join(str(m) for m in messages) if isinstance(messages, (list, tuple)) else str(messages)
    return Markup(f'<div class="errors field-error" data-field="{escape(name)}" role="alert">{escape(text)}</div>')


def form_value(name: str, default="", *endpoints: str):
    if request.method == "POST" and request.endpoint in endpoints and name in request.form:
        return request.form.get(name)
    return "" if default is None else default


def form_alert(*endpoints: str) -> Markup:
    """Inside the form: a refusal with field messages says so once (the details are next to
    the fields). A refusal without fields is shown at the top of the page (``page_refusal``)."""
    if not _posted_to(endpoints) or not g.form_refusal.fields:
        return Markup("")
    return Markup('<p class="flash error form-alert" role="alert">未保存，请按提示修改后重试（未做任何更改）</p>')


def page_refusal() -> Markup:
    """At the top of the page: a refusal that names no field (e.g. the ticket's state changed)."""
    exc = getattr(g, "form_refusal", None)
    if exc is None or exc.fields:
        return Markup("")
    return Markup(f'<div class="flash error" role="alert" id="refusal">{escape(exc.message)}</div>')


def field_list(fields: dict | None) -> list[tuple[str, str]]:
    """(label, messages) of a refusal's fields, for pages away from the form."""
    out = []
    for name, messages in (fields or {}).items():
        text = "；".join(str(m) for m in messages) if isinstance(messages, (list, tuple)) else str(messages)
        label = FIELD_LABELS.get(name.split(".")[0], "")
        out.append((label, text))
    return out


@bp.context_processor
def _form_helpers():
    return {"field_error": field_error, "form_value": form_value, "form_alert": form_alert,
            "page_refusal": page_refusal}


def _page(status: int, message: str, fields: dict | None = None):
    """An error page in the layout (menu kept) for a signed-in person, the plain one before."""
    if auth.current_staff() is None:
        return common_page(status, message)
    return _layout_page(status, message, fields)


def _layout_page(status: int, message: str, fields: dict | None = None):
    return render_template("console/error.html", status=status, message=message, fields=field_list(fields)), status


def _refused(exc: DomainError):
    """A refused form's page again, with the messages (``FORM_PAGES``); any other refusal in
    the layout."""
    page = FORM_PAGES.get(request.endpoint or "")
    if request.method == "POST" and page:
        g.form_refusal = exc
        view = current_app.view_functions[page]
        wanted = inspect.signature(view).parameters
        args = {k: v for k, v in (request.view_args or {}).items() if k in wanted}
        response = current_app.make_response(view(**args))
        response.status_code = exc.status
        return response
    return _layout_page(exc.status, exc.message, exc.fields)


install_error_pages(bp, _page, refused=_refused)
