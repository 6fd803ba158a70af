"""Tickets (工单), their timeline, photos and the SLA policy table."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.household import Household
from app.models.outage import Outage
from app.models.staff import Crew, Staff
from app.models.types import UTCDateTime, utcnow


class TicketSource:
    PHONE = "phone"
    OFFICIAL_ACCOUNT = "official_account"
    MINI_PROGRAM = "mini_program"
    STAFF = "staff"
    WALK_IN = "walk_in"        # a resident at the service desk (营业厅来访), logged by an agent
    ALL = (PHONE, OFFICIAL_ACCOUNT, MINI_PROGRAM, STAFF, WALK_IN)
    LABELS = {PHONE: "电话", OFFICIAL_ACCOUNT: "公众号", MINI_PROGRAM: "小程序", STAFF: "客服录入", WALK_IN: "来访"}
    DESK = (PHONE, WALK_IN)    # what an agent logs in the console's 新建工单


class TicketType:
    REPAIR = "repair"
    COMPLAINT = "complaint"
    INQUIRY = "inquiry"
    SUGGESTION = "suggestion"
    REPORT = "report"
    HELP = "help"
    ALL = (REPAIR, COMPLAINT, INQUIRY, SUGGESTION, REPORT, HELP)
    LABELS = {REPAIR: "报修", COMPLAINT: "投诉", INQUIRY: "咨询", SUGGESTION: "建议", REPORT: "举报", HELP: "求助"}
    # Answered and closed directly by an agent, without a crew.
    DIRECT_CLOSE = (INQUIRY, SUGGESTION)


class TicketCategory:
    NO_HEAT = "no_heat"
    LOW_TEMPERATURE = "low_temperature"
    LEAK = "leak"
    BURST_PIPE = "burst_pipe"
    NOISE = "noise"
    VALVE = "valve"
    RADIATOR = "radiator"
    BILLING = "billing"
    SERVICE = "service"
    OTHER = "other"
    LABELS = {
        NO_HEAT: "不热/停暖", LOW_TEMPERATURE: "温度偏低", LEAK: "漏水", BURST_PIPE: "爆管",
        NOISE: "噪音", VALVE: "阀门故障", RADIATOR: "暖气片问题", BILLING: "收费问题",
        SERVICE: "服务态度", OTHER: "其他",
    }
    ALL = tuple(LABELS)
    EMERGENCY = (LEAK, BURST_PIPE)  # a leak or burst pipe is an emergency


class Priority:
    NORMAL = "normal"
    URGENT = "urgent"
    EMERGENCY = "emergency"
    ALL = (NORMAL, URGENT, EMERGENCY)
    LABELS = {NORMAL: "普通", URGENT: "紧急", EMERGENCY: "特急"}


class TicketState:
    NEW = "new"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    REPLIED = "replied"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    ALL = (NEW, ASSIGNED, ACCEPTED, IN_PROGRESS, REPLIED, CLOSED, CANCELLED)
    OPEN = (NEW, ASSIGNED, ACCEPTED, IN_PROGRESS, REPLIED)
    LABELS = {
        NEW: "待派单", ASSIGNED: "已派单", ACCEPTED: "已接单", IN_PROGRESS: "处理中",
        REPLIED: "已回复", CLOSED: "已办结", CANCELLED: "已撤销",
    }


class Ticket(db.Model):
    __tablename__ = "ticket"
    __table_args__ = (
        CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name="rating_range"),
        Index("ix_ticket_state_finish_by", "state", "finish_by"),
        Index("ix_ticket_assignee_state", "assignee_id", "state"),
        Index("ix_ticket_created_at", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)      # GD20261123-000123
    source: Mapped[str] = mapped_column(String(20))
    type: Mapped[str] = mapped_column(String(16), index=True)
    category: Mapped[str] = mapped_column(String(20), default=TicketCategory.OTHER)
    priority: Mapped[str] = mapped_column(String(12), default=Priority.NORMAL)
    state: Mapped[str] = mapped_column(String(16), default=TicketState.NEW)

    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("wechat_user.id"), index=True)
    caller_phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164 (app.phones)
    caller_phone_ext: Mapped[str | None] = mapped_column(String(10))          # 分机
    caller_name: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    recording_url: Mapped[str | None] = mapped_column(String(500))
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)  # phone system's number
    # Time of the newest phone-system event applied to this ticket (older events do not overwrite).
    external_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    crew_id: Mapped[int | None] = mapped_column(ForeignKey("crew.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)  # defect order
    # The outage this report is linked to (停热关联): not dispatched, clocks held while it lasts.
    outage_id: Mapped[int | None] = mapped_column(ForeignKey("outage.id"), index=True)
    # Set while the ticket waits on its outage: the SLA clock is paused (deadlines empty) from
    # this moment until the ticket becomes a normal repair again or is closed.
    sla_held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finish_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first response
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    reply: Mapped[str | None] = mapped_column(Text)          # crew's answer
    final_answer: Mapped[str | None] = mapped_column(Text)   # agent's answer to the resident
    visit_result: Mapped[str | None] = mapped_column(Text)   # 回访结果
    visited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    household: Mapped[Household | None] = relationship()
    crew: Mapped[Crew | None] = relationship()
    assignee: Mapped[Staff | None] = relationship(foreign_keys=[assignee_id])
    outage: Mapped["Outage | None"] = relationship()
    parent: Mapped["Ticket | None"] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list["Ticket"]] = relationship(back_populates="parent")
    events: Mapped[list["TicketEvent"]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id", cascade="all, delete-orphan"
    )
    photos: Mapped[list["TicketPhoto"]] = relationship(back_populates="ticket", cascade="all, delete-orphan")

    @property
    def is_open(self) -> bool:
        return self.state in TicketState.OPEN


class TicketEvent(db.Model):
    """One entry of a ticket's timeline: who, when, what, a note and photos."""

    __tablename__ = "ticket_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    action: Mapped[str] = mapped_column(String(24))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    actor_kind: Mapped[str] = mapped_column(String(12))        # staff | resident | system | phone
    actor_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("wechat_user.id"))
    actor_name: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="events")
    photos: Mapped[list["TicketPhoto"]] = relationship(back_populates="event")


class TicketPhoto(db.Model):
    __tablename__ = "ticket_photo"
    __table_args__ = (UniqueConstraint("ticket_id", "media_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_event.id"), index=True)
    media_id: Mapped[str | None] = mapped_column(String(128))  # WeChat media id, until fetched
    path: Mapped[str | None] = mapped_column(String(300))       # stored file, outside the code tree
    content_type: Mapped[str | None] = mapped_column(String(40))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    uploaded_by_kind: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="photos")
    event: Mapped[TicketEvent | None] = relationship(back_populates="photos")


class SlaPolicy(db.Model):
    """Respond-by and finish-by minutes for a ticket type and priority (editable data)."""

    __tablename__ = "sla_policy"
    __table_args__ = (UniqueConstraint("ticket_type", "priority"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_type: Mapped[str] = mapped_column(String(16))  # a TicketType or "*" for any type
    priority: Mapped[str] = mapped_column(String(12))
    respond_minutes: Mapped[int] = mapped_column(Integer)
    finish_minutes: Mapped[int] = mapped_column(Integer)


class TicketCounter(db.Model):
    """Per-day sequence for readable ticket numbers, safe under concurrency."""

    __tablename__ = "ticket_counter"
    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class EvidenceRule(db.Model):
    """At least ``min_photos`` photos from the crew before a ticket of ``category`` can be answered
    (editable data; seeded for leaks and burst pipes)."""

    __tablename__ = "evidence_rule"
    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(20), unique=True)
    min_photos: Mapped[int] = mapped_column(Integer, default=1)
