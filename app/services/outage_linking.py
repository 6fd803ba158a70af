"""Reports linked to outages (docs/outage_linking.md): the use cases that move an outage and
the tickets waiting on it together.

    restore_outage      heat is back: the area told, and each linked report its own notice
    report_still_cold   a resident answers 还冷 within the window: the report goes to a crew
    close_unconfirmed   after the window, the reports nobody answered for are closed (cron)
    convert_cluster     staff turn a suspected outage (疑似停热) into an outage, reports linked

This module sits above ``tickets``, ``outages`` and ``clusters`` and is the only one that
imports all three: ``tickets.create_ticket`` asks ``outages`` (is there an active outage
here?) and ``clusters`` (count a heat report), so neither of those may import ``tickets``.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from app.errors import InvalidTransitionError, NotFoundError
from app.extensions import db
from app.models import ClusterStatus, Outage, OutageCluster, OutageKind, OutageStatus, Ticket, TicketState, utcnow
from app.services import clusters, outages, outbox, tickets


def restore_outage(outage_id: int, *, at: datetime | None = None) -> Outage:
    """Heat is back: the area is told, and every report linked to the outage gets its own
    restoration notice with the "still cold" window (outbox rows, same transaction)."""
    outage = outages.mark_restored(outage_id, at=at)
    until = outages.still_cold_until(outage)
    for ticket in outages.waiting_tickets(outage.id):
        event = tickets.note_outage_restored(ticket, outage, until=until, at=outage.actual_end_at)
        if ticket.reporter_id is not None:
            outbox.record("notify.outage_restored",
                          {"ticket_id": ticket.id, "outage_id": outage.id, "wechat_user_id": ticket.reporter_id,
                           "until": until.isoformat(), "event_id": event.id},
                          dedupe_key=f"outage_restored:{outage.id}:{ticket.id}")
    return outage


def report_still_cold(ticket: Ticket, actor, *, note: str | None = None, now: datetime | None = None):
    """A resident answers "still cold" (还冷) to the restoration notice, within the window."""
    now = now or utcnow()
    outage = ticket.outage
    if outage is None or ticket.sla_held_at is None or not ticket.is_open:
        raise InvalidTransitionError("该工单没有等待恢复供热的停热关联", code="not_waiting_on_outage")
    if outage.status != OutageStatus.RESTORED:
        raise InvalidTransitionError(f"停热尚未恢复（{outages.linked_message(outage)}），恢复供热后如仍不热请再反馈",
                                     code="outage_not_restored")
    if now > outages.still_cold_until(outage):
        raise InvalidTransitionError("反馈时间已过，工单已办结；如仍不热请重新报修", code="still_cold_window_passed")
    return tickets.resume_after_outage(ticket, actor, note=note, now=now)


def close_unconfirmed(now: datetime | None = None, limit: int = 500) -> int:
    """After the "still cold" window, close the linked reports nobody answered for (cron)."""
    now = now or utcnow()
    hours = outages.still_cold_hours()
    cutoff = now - timedelta(hours=hours)
    rows = list(db.session.scalars(
        select(Ticket).join(Outage, Outage.id == Ticket.outage_id)
        .where(Outage.status == OutageStatus.RESTORED, Outage.actual_end_at <= cutoff, outages.waiting_on_outage())
        .order_by(Ticket.id).limit(limit)))
    for ticket in rows:
        outage = ticket.outage
        tickets.close_after_outage(ticket, at=now, final_answer=(
            f"停热“{outage.title}”已于{outages.local_time(outage.actual_end_at)}恢复供热，"
            f"{hours}小时内未收到仍不热的反馈，工单办结。如仍有问题请重新报修。"))
    return len(rows)


def convert_cluster(cluster_id: int, *, expected_end_at: datetime | None, reason: str | None = None,
                    title: str | None = None, created_by_id: int | None = None, now: datetime | None = None):
    """Staff turn a cluster into an outage in one step: the outage (active now) for the
    cluster's station or community, the area notified (notify.outage), and the open reports
    there linked to it (those still waiting at a crew are taken back from it)."""
    now = now or utcnow()
    cluster = db.session.get(OutageCluster, cluster_id)
    if cluster is None:
        raise NotFoundError("疑似停热记录不存在")
    if cluster.status != ClusterStatus.OPEN:
        raise InvalidTransitionError(f"该记录{ClusterStatus.LABELS[cluster.status]}，不能再转为停热")
    place = clusters.place_name(cluster)
    area = ({"station_id": cluster.station_id} if cluster.station_id is not None
            else {"community_id": cluster.community_id})
    outage = outages.create_outage(
        title=(title or "").strip() or f"{place}临时停热", kind=OutageKind.UNPLANNED,
        reason=(reason or "").strip() or "设备故障抢修中", starts_at=min(cluster.first_report_at, now),
        expected_end_at=expected_end_at, areas=[area], created_by_id=created_by_id, now=now)
    linked = 0
    for ticket in clusters.cluster_reports(cluster):
        if ticket.outage_id is None and ticket.state in (TicketState.NEW, TicketState.ASSIGNED) \
                and tickets.is_heat_report(ticket.type, ticket.category):
            tickets.link_to_outage(ticket, outage, at=now)
            linked += 1
    cluster.outage_id = outage.id
    clusters.resolve(cluster, ClusterStatus.CONVERTED, now)
    return outage, linked
