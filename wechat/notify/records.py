"""What we keep of each notice sent: its outbound row, the consents it spends, the problems
of templates for the console (DESIGN §5).

A notification has a unique key (``OutboundMessage.dedupe_key``): it is claimed once, and
sent at most once. Right before WeChat is called, the row is committed as ``sending`` with
the channel. If the process dies during the call, or WeChat does not answer in time, nobody
knows whether the message arrived. Such a send is repeated only as a template message with
the same ``client_msg_id``, while WeChat still drops the repeat (``RESEND_WITHIN``); a
customer-service or subscribe message (no such key), or a template message found too late,
becomes ``unknown`` — shown to staff, who may resend it.

Every function here works on the chain's items (``wechat.notify.channels.Plan``) in bulk —
one statement per step however many items — and leaves the commit to the chain.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import String, bindparam, func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from app.dbutil import insert_or_skip
from app.extensions import db
from app.models import OutboundMessage, SubscribeConsent, WechatUser, utcnow
from app.models.messages import OutboundStatus
from wechat import templates
from wechat.notify.transport import Outcome

if TYPE_CHECKING:
    from wechat.notify.channels import Plan

log = logging.getLogger(__name__)

# WeChat sends one message per openid + client_msg_id within 10 minutes (WECHAT.md §3). A
# template message whose answer was lost is sent again with the same id only well inside
# that window; later it is "unknown".
CLIENT_MSG_ID_WINDOW = timedelta(minutes=10)
RESEND_WITHIN = CLIENT_MSG_ID_WINDOW - timedelta(minutes=2)  # clocks and queues: keep a margin
UNKNOWN_REASONS = {
    "interrupted": "发送过程中断，无法确认对方是否收到",
    "timeout": "微信接口未及时应答，无法确认对方是否收到",
    "too_late": "发送过程中断，且已超过微信模板消息去重时限，无法确认对方是否收到",
}


def may_resend_in_doubt(channel: str | None, sending_at: datetime | None, now: datetime) -> bool:
    """Whether a send whose answer was lost may be made again: only a template message (WeChat
    drops the repeat by its client_msg_id), and only while WeChat still remembers the id."""
    return channel == "template" and sending_at is not None and now - sending_at < RESEND_WITHIN


def in_doubt_outcome(channel: str | None) -> Outcome:
    """What a send whose answer was lost becomes when it may not be made again."""
    reason = "too_late" if channel == "template" else "interrupted"
    return Outcome(OutboundStatus.UNKNOWN, channel, None, UNKNOWN_REASONS[reason])


def unanswered_outcome(channel: str, *, classified: bool = True) -> Outcome:
    """A customer-service or subscribe message whose call got no answer: it may have arrived,
    and has no key WeChat dedupes — never sent again."""
    return Outcome(OutboundStatus.UNKNOWN, channel, None, UNKNOWN_REASONS["timeout" if classified else "interrupted"])


def claim(plans: list[Plan], now: datetime, *, keep_notice: bool = False) -> None:
    """Claim every key in one statement. Keys finished earlier get their outcome (duplicate);
    a key left "sending" by a run that was cut off is repeated as a template message with its
    client_msg_id if it may be, else settled as unknown (in this transaction).

    ``keep_notice``: the notice itself is kept on the row (``Notice.to_payload``), so that a
    cut-off send can be recovered and staff can resend it (a broadcast keeps its text on the
    broadcast instead)."""
    table = OutboundMessage.__table__
    stmt = insert_or_skip(table, conflict=["dedupe_key"]).returning(table.c.id, table.c.dedupe_key)

    def payload(notice) -> dict:
        kept = {"kind": notice.kind, "title": notice.title}
        if keep_notice:
            kept["notice"] = notice.to_payload()
        return kept

    claimed = dict((k, i) for i, k in db.session.execute(stmt, [
        {"dedupe_key": p.key, "wechat_user_id": p.user_id, "status": OutboundStatus.PENDING, "attempts": 0,
         "payload": payload(p.notice), "created_at": now} for p in plans]).all())
    others = [p.key for p in plans if p.key not in claimed]
    earlier = {}
    if others:
        earlier = {r.dedupe_key: r for r in db.session.execute(
            select(table.c.id, table.c.dedupe_key, table.c.status, table.c.channel, table.c.errcode,
                   table.c.errmsg, table.c.attempts, table.c.sending_at).where(table.c.dedupe_key.in_(others)))}
    settle = []
    for p in plans:
        if p.key in claimed:
            p.row_id = claimed[p.key]
            continue
        row = earlier[p.key]
        if row.status in OutboundStatus.FINAL:
            p.outcome = Outcome(row.status, row.channel, row.errcode, row.errmsg, duplicate=True)
            continue
        p.row_id, p.attempts = row.id, row.attempts  # a run that did not finish
        if row.status == OutboundStatus.SENDING:
            if may_resend_in_doubt(row.channel, row.sending_at, now):
                p.in_doubt_since = row.sending_at
            else:
                p.outcome = in_doubt_outcome(row.channel)
                settle.append({"_id": row.id, "_status": p.outcome.status, "_errmsg": p.outcome.reason})
    if settle:
        db.session.execute(update(table).where(table.c.id == bindparam("_id"),
                                               table.c.status == OutboundStatus.SENDING)
                           .values(status=bindparam("_status"), errmsg=bindparam("_errmsg")), settle)


def take_consents(plans: list[Plan], registry: templates.Registry) -> None:
    """Take one subscribe consent per (user, template) where one is left — one UPDATE per
    template; committed with the "sending" marks that follow."""
    by_template: dict[str, list[Plan]] = {}
    for p in plans:
        template = registry.subscribe(p.notice.kind)
        if p.outcome is None and p.in_doubt_since is None and template and p.mp_openid:
            by_template.setdefault(template.template_id, []).append(p)
    for template_id, group in by_template.items():
        taken = set(db.session.execute(
            update(SubscribeConsent)
            .where(SubscribeConsent.template_id == template_id, SubscribeConsent.remaining > 0,
                   SubscribeConsent.wechat_user_id.in_({p.user_id for p in group}))
            .values(remaining=SubscribeConsent.remaining - 1)
            .returning(SubscribeConsent.wechat_user_id)
            .execution_options(synchronize_session=False)).scalars())
        for p in group:  # one consent per person and template in a batch
            if p.user_id in taken:
                p.subscribe_template = template_id
                taken.discard(p.user_id)


def mark_sending(group: list[Plan], now: datetime, on_sending, repeats) -> None:
    """Each item "sending" through its current channel (one statement), and the caller's rows
    (``on_sending``) in the same transaction; the caller commits."""
    if not group:
        return
    table = OutboundMessage.__table__
    db.session.execute(
        update(table).where(table.c.id == bindparam("_id")).values(
            status=OutboundStatus.SENDING, channel=bindparam("_channel"), sending_at=bindparam("_at")),
        [{"_id": p.row_id, "_channel": p.channel, "_at": p.in_doubt_since or now} for p in group])
    if on_sending is not None:
        first = {id(p) for p in group}
        marks = [(p.index, p.channel) for p in group]
        marks += [(r.index, f.channel) for r, f in repeats if id(f) in first]
        on_sending(marks)


def record_template_result(row: OutboundMessage, status: str) -> None:
    """WeChat's TEMPLATESENDJOBFINISH verdict on a template message we sent."""
    row.delivered = status[:40]
    if status != "success":
        row.status, row.errmsg = "failed", f"TEMPLATESENDJOBFINISH: {status}"[:300]


def finish(todo: list[Plan], users: dict[int, WechatUser], redis) -> None:
    """Store what became of each item (one statement per kind of change); the caller commits.

    An outcome is final (its row ``sent``/``skipped``/``failed``/``unknown``, with WeChat's
    TEMPLATESENDJOBFINISH verdict where it came first); no outcome: a template message that may
    have gone out stays "sending" (repeated later with its client_msg_id), anything else surely
    did not go out and is pending again. Consents are given back where the message did not go
    (it will be retried, or another channel carried it), zeroed where WeChat said there was none;
    a person who unfollowed (43004 to a template message) is marked so."""
    table = OutboundMessage.__table__
    done = [p for p in todo if p.outcome is not None]
    sent_at = utcnow()
    early = {}
    msgids = [p.outcome.msgid for p in done if p.outcome.status == "sent" and p.outcome.msgid]
    if msgids:  # TEMPLATESENDJOBFINISH events that arrived before this bookkeeping
        pipe = redis.pipeline(transaction=False)
        for m in msgids:
            pipe.getdel(f"wechat:template-finish:{m}")
        early = {m: v.decode() for m, v in zip(msgids, pipe.execute()) if v}

    if done:
        rows = []
        for p in done:
            o = p.outcome
            status, errmsg, delivered = o.status, o.reason, None
            if o.msgid in early:
                delivered = early[o.msgid][:40]
                if early[o.msgid] != "success":
                    status, errmsg = "failed", f"TEMPLATESENDJOBFINISH: {early[o.msgid]}"[:300]
            rows.append({"_id": p.row_id, "_status": status, "_channel": o.channel, "_errcode": o.errcode,
                         "_errmsg": errmsg, "_openid": p.oa_openid or p.mp_openid,
                         "_sent_at": sent_at if o.status == "sent" else None,
                         "_msgid": o.msgid if o.status == "sent" else None, "_delivered": delivered})
        db.session.execute(
            update(table).where(table.c.id == bindparam("_id")).values(
                status=bindparam("_status"), channel=bindparam("_channel"), errcode=bindparam("_errcode"),
                errmsg=bindparam("_errmsg"), openid=bindparam("_openid"), sent_at=bindparam("_sent_at"),
                wechat_msgid=bindparam("_msgid"), delivered=bindparam("_delivered"),
                attempts=table.c.attempts + 1), rows)
    held = [p for p in todo if p.held]
    back = [p for p in todo if p.outcome is None and not p.held]
    for group, values in ((held, {}), (back, {"status": OutboundStatus.PENDING, "channel": None,
                                              "sending_at": None})):
        if group:
            db.session.execute(
                update(table).where(table.c.id == bindparam("_id")).values(
                    errmsg=func.coalesce(bindparam("_errmsg", type_=String(300)), table.c.errmsg),
                    attempts=table.c.attempts + bindparam("_tried"), **values),
                [{"_id": p.row_id, "_errmsg": str(p.error)[:300] if p.error is not None else None,
                  "_tried": 1 if p.error is not None else 0} for p in group])
    back = [p for p in todo if p.subscribe_template and not p.consent_lost and (p.outcome is None or p.consent_back)]
    lost = [p for p in todo if p.consent_lost]
    ct = SubscribeConsent.__table__
    for group, value in ((back, ct.c.remaining + 1), (lost, 0)):
        if group:
            db.session.execute(update(ct).where(ct.c.wechat_user_id == bindparam("_u"),
                                                ct.c.template_id == bindparam("_t")).values(remaining=value),
                               [{"_u": p.user_id, "_t": p.subscribe_template} for p in group])
    gone = [p.user_id for p in todo if p.unfollowed]
    if gone:
        wt = WechatUser.__table__
        db.session.execute(update(wt).where(wt.c.id.in_(gone)).values(subscribed=False))
        for uid in gone:
            if uid in users:
                set_committed_value(users[uid], "subscribed", False)


def report_problems(redis, plans: list[Plan], registry: templates.Registry, now: datetime) -> None:
    """Tell the operators of the templates met in this batch that WeChat refused or the values
    could not fill — an error in the log and the latest problem kept for the console
    (``wechat.templates.problems``), once per channel and kind; the ones whose channel and kind
    went through are over."""
    seen, sent = {}, set()
    for p in plans:
        for o in (p.failure, p.outcome):
            if o is not None and o.config_problem and o.channel in ("subscribe", "template"):
                seen.setdefault((o.channel, p.notice.kind), o)
        if p.outcome is not None and p.outcome.status == "sent" and p.outcome.channel in ("subscribe", "template"):
            sent.add((p.outcome.channel, p.notice.kind))
    templates.clear_problems(redis, sent - set(seen))
    for (channel, kind), o in seen.items():
        t = registry.subscribe(kind) if channel == "subscribe" else registry.template(kind)
        template_id = t.template_id if t else None
        log.error("wechat: %s of kind %s (template %s) not sent: %s", o.channel, kind, template_id, o.reason)
        templates.record_problem(redis, o.channel, kind, template_id, o.errcode, o.reason or "", now)
