"""Outbox handlers that tell one person something through WeChat (wechat.notify).

Each handler loads fresh state, builds the Chinese notice and sends it once per recipient
(the notice key carries the outbox id), so a re-run after a crash sends nothing twice.

A worker that dies during the WeChat call leaves the notice's outbound row "sending". The
re-run job (RQ retries an abandoned job; the outbox sweeper re-queues it) or, sooner, the
``recover_notices`` sweeper settles it through ``send_notice``: a template message is sent
again with its client_msg_id while WeChat still drops the repeat, a customer-service or
subscribe message becomes "unknown" — listed for staff (console 失败任务), who may resend it
(``resend_notice``, a new key: exactly once more).
"""
from __future__ import annotations

import logging

from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from app.clock import local_now
from app.extensions import db
from app.links import task_url
from app.models import (
    OutboundMessage, Outage, OutageCluster, Priority, Role, Staff, Ticket, TicketCategory, TicketState, TicketType,
    WechatUser, utcnow,
)
from app.models.messages import OutboundStatus
from app.queue import enqueue
from app.services import clusters
from app.services.notices import BROADCAST_KEY_PREFIX
from wechat.notify import UNKNOWN_REASONS, Notice, Outcome, send_notice

log = logging.getLogger(__name__)


def _local(dt) -> str:
    return local_now(dt).strftime("%m月%d日 %H:%M") if dt else "—"


def _staff_user(staff_id: int) -> WechatUser | None:
    return db.session.scalar(select(WechatUser).where(WechatUser.staff_id == staff_id))


def _where(ticket: Ticket) -> str:
    return ticket.household.address if ticket.household else (ticket.address or "未提供地址")


def _task_page(ticket: Ticket) -> str:
    return f"pages/task/detail?id={ticket.id}"


def _category(ticket: Ticket) -> str:
    kind = TicketType.LABELS.get(ticket.type, ticket.type)
    category = TicketCategory.LABELS.get(ticket.category, "")
    return f"{kind}·{category}" if category else kind


def _ticket_values(ticket: Ticket) -> dict:
    """The fields every task notice shows (wechat.templates.KINDS)."""
    return {
        "ticket_no": ticket.number,
        "category": _category(ticket),
        "address": _where(ticket),
        "problem": ticket.description[:200],
        "priority": Priority.LABELS.get(ticket.priority, "普通"),
        "finish_by": ticket.finish_by,
    }


def _send_to_staff(staff_id: int, notice: Notice) -> Outcome | None:
    user = _staff_user(staff_id)
    if user is None:
        staff = db.session.get(Staff, staff_id)
        log.warning("notify: staff %s (%s) has not bound WeChat; %s not sent",
                    staff_id, staff.name if staff else "?", notice.key)
        return None
    return send_notice(user, notice)


def task_assigned(payload: dict, outbox_id: int) -> None:
    ticket = db.session.get(Ticket, payload["ticket_id"])
    if ticket is None or ticket.assignee_id != payload["staff_id"] or not ticket.is_open:
        return  # the task moved on before we got here: nothing to tell
    urgent = "【特急】" if ticket.priority == Priority.EMERGENCY else ""
    _send_to_staff(payload["staff_id"], Notice(
        key=f"outbox:{outbox_id}:staff:{payload['staff_id']}", kind="task_assigned",
        title=f"{urgent}您有新的维修任务，请及时接单", values=_ticket_values(ticket),
        remark="请点击查看任务接单处理（或在小程序“我的任务”中），非本人任务可转办。", url=task_url(ticket),
        mp_page=_task_page(ticket)))


def emergency_alert(payload: dict, outbox_id: int) -> None:
    ticket = db.session.get(Ticket, payload["ticket_id"])
    if ticket is None or not ticket.is_open:
        return
    values = _ticket_values(ticket)
    values.pop("finish_by")
    values.pop("priority")
    values.update(assignee=ticket.assignee.name if ticket.assignee else "待派单", reported_at=ticket.created_at)
    url, mp_page = _alert_pages(payload["staff_id"], ticket)
    _send_to_staff(payload["staff_id"], Notice(
        key=f"outbox:{outbox_id}:staff:{payload['staff_id']}", kind="emergency_alert",
        title="【紧急工单】请立即关注", values=values,
        remark="该工单为紧急工单（漏水/爆管等），请督促尽快到场。", url=url, mp_page=mp_page))


def _alert_pages(staff_id: int, ticket: Ticket) -> tuple[str | None, str | None]:
    """(page, mini-program page) an alert about ``ticket`` opens for its recipient: a crew's lead
    the task (page and mini-program; crews' pages only), the leader on duty the dashboard's
    ticket page (leaders sign in there through WeChat; the crews' mini-program is not theirs)."""
    staff = db.session.get(Staff, staff_id)
    if staff is not None and staff.role == Role.LEADER:
        return f"{current_app.config['PUBLIC_BASE_URL']}/dashboard/tickets/{ticket.id}", None
    return task_url(ticket), _task_page(ticket)


STATE_TEXT = {
    TicketState.REPLIED: "维修人员已处理并回复",
    TicketState.CLOSED: "您的工单已办结",
    TicketState.CANCELLED: "您的工单已撤销",
}


def ticket_updated(payload: dict, outbox_id: int) -> None:
    ticket = db.session.get(Ticket, payload["ticket_id"])
    user = db.session.get(WechatUser, payload["wechat_user_id"])
    if ticket is None or user is None:
        return
    state = payload.get("state") or ticket.state
    answer = ticket.final_answer if state == TicketState.CLOSED else ticket.reply
    title = STATE_TEXT.get(state, "您的工单有新进展")
    remark = "如问题未解决，可在7日内申请重新处理。" if state in (TicketState.REPLIED, TicketState.CLOSED) else None
    if state == TicketState.CLOSED and ticket.rating is None:
        remark = "欢迎对本次服务进行评价。" + (remark or "")
    send_notice(user, Notice(
        key=f"outbox:{outbox_id}:user:{user.id}", kind="ticket_updated", title=title,
        values={"ticket_no": ticket.number, "state": TicketState.LABELS.get(state, "处理中"),
                "result": (answer or title)[:200], "updated_at": ticket.updated_at or utcnow()},
        remark=remark, url=f"{current_app.config['PUBLIC_BASE_URL']}/t/{ticket.number}",
        mp_page=f"pages/repair/detail?id={ticket.id}"))


STILL_COLD_WORDS = "还冷"


def outage_restored(payload: dict, outbox_id: int) -> None:
    """A report linked to an outage: heat is back; answer 还冷 within the window if still cold."""
    from datetime import datetime

    ticket = db.session.get(Ticket, payload["ticket_id"])
    user = db.session.get(WechatUser, payload["wechat_user_id"])
    outage = db.session.get(Outage, payload["outage_id"])
    if ticket is None or user is None or outage is None:
        return
    until = datetime.fromisoformat(payload["until"])
    send_notice(user, Notice(
        key=f"outbox:{outbox_id}:user:{user.id}", kind="outage_restored",
        title=f"恢复供热通知：{outage.title}",
        values={"area": _where(ticket), "restored_at": outage.actual_end_at or utcnow(),
                "tip": f"{local_now(until):%m月%d日%H:%M}前仍不热请回复{STILL_COLD_WORDS}"},
        remark=(f"报修工单{ticket.number}：您家所在区域已恢复供热，暖气升温需要一段时间。如{_local(until)}前家中仍不热，"
                f"请回复“{STILL_COLD_WORDS}”（或在小程序报修详情中点击“仍不热”），我们将派维修人员上门；"
                "未反馈的报修将在此后自动办结。"),
        url=f"{current_app.config['PUBLIC_BASE_URL']}/t/{ticket.number}",
        mp_page=f"pages/repair/detail?id={ticket.id}"))


def cluster_alert(payload: dict, outbox_id: int) -> None:
    """Many no-heat reports from one place with no outage recorded: the crew lead and the
    leader on duty get the list, once per cluster."""
    cluster = db.session.get(OutageCluster, payload["cluster_id"])
    if cluster is None:
        return
    reports = clusters.cluster_reports(cluster)
    lines = [f"{t.number} {_where(t)}" for t in reports[:10]]
    more = f"等共{len(reports)}起" if len(reports) > 10 else f"共{len(reports)}起"
    minutes = int(clusters.window().total_seconds() // 60)
    place = clusters.place_name(cluster)
    _send_to_staff(payload["staff_id"], Notice(
        key=f"outbox:{outbox_id}:staff:{payload['staff_id']}", kind="cluster_alert",
        title=f"【疑似停热】{place}{minutes}分钟内收到{cluster.report_count}起不热报修",
        values={"place": place, "reports": cluster.report_count, "first_report_at": cluster.first_report_at,
                "last_report_at": cluster.last_report_at, "advice": "请核实，如确为停热请在后台转为停热"},
        remark="报修清单：\n" + "\n".join(lines) + f"\n{more}。系统未登记该处停热，请核实；"
               "如确为停热，请在客服后台“疑似停热”中一键转为停热，系统将关联报修并通知住户。",
        url=_cluster_page(payload["staff_id"])))


def _cluster_page(staff_id: int) -> str:
    """A page the alert's recipient can open from WeChat: crews cannot sign in to the console
    (their task inbox holds the reports), leaders get their dashboard, staff of the console the
    clusters page."""
    base = current_app.config["PUBLIC_BASE_URL"]
    staff = db.session.get(Staff, staff_id)
    role = staff.role if staff is not None else None
    if role in (Role.CREW_MEMBER, Role.CREW_LEAD):
        return f"{base}/mp/tasks"
    if role == Role.LEADER:
        return f"{base}/dashboard/"
    return f"{base}/console/clusters"


# --- cut-off sends: recovery, and the resend staff ask for ----------------------------------------

def recover_notices(now=None) -> int:
    """Cron: single notices still "sending" past ``NOTICE_LEASE_SECONDS`` were cut off (their
    worker died during the call); ``recover_notice`` settles each. Broadcast deliveries
    recover through their slices (jobs.broadcast)."""
    now = now or utcnow()
    lease = timedelta(seconds=int(current_app.config["NOTICE_LEASE_SECONDS"]))
    ids = db.session.scalars(
        select(OutboundMessage.id).where(OutboundMessage.status == OutboundStatus.SENDING,
                                         OutboundMessage.sending_at < now - lease,
                                         ~OutboundMessage.dedupe_key.startswith(BROADCAST_KEY_PREFIX))
        .order_by(OutboundMessage.id).limit(500)).all()
    for outbound_id in ids:
        enqueue("jobs.notify.recover_notice", outbound_id, queue="notify", job_id=f"recover-notice-{outbound_id}")
    if ids:
        log.warning("notify: %d notice(s) cut off during the WeChat call; settling them", len(ids))
    return len(ids)


def recover_notice(outbound_id: int) -> str:
    """Settle one cut-off notice the way ``send_notice`` does for a re-run: the same notice
    again (its text is kept on the row), which WeChat receives only if it dedupes it."""
    row = db.session.get(OutboundMessage, outbound_id)
    if row is None or row.status != OutboundStatus.SENDING:
        return "settled"
    user = db.session.get(WechatUser, row.wechat_user_id) if row.wechat_user_id else None
    data = (row.payload or {}).get("notice")
    if user is None or not data:  # nothing to send it again with: staff decide
        db.session.execute(update(OutboundMessage).where(
            OutboundMessage.id == row.id, OutboundMessage.status == OutboundStatus.SENDING)
            .values(status=OutboundStatus.UNKNOWN, errmsg=UNKNOWN_REASONS["interrupted"]))
        db.session.commit()
        return OutboundStatus.UNKNOWN
    return send_notice(user, Notice.from_payload(data)).status


def resend_notice(payload: dict, outbox_id: int) -> None:
    """Outbox handler of "notify.resend": staff chose to send a notice whose outcome was
    unknown once more (console 重新发送). A new key per resent row: sent exactly once."""
    row = db.session.get(OutboundMessage, payload["outbound_id"])
    data = (row.payload or {}).get("notice") if row is not None else None
    user = db.session.get(WechatUser, row.wechat_user_id) if row is not None and row.wechat_user_id else None
    if not data or user is None:
        log.warning("notify: outbound %s cannot be resent (no text or no recipient)", payload["outbound_id"])
        return
    send_notice(user, Notice.from_payload(data, key=f"resend:{row.id}"))
