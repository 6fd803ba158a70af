"""Who looked at whose personal data (个人信息访问记录): every opening of a customer page and
every export of a list holding residents' names or phone numbers (China's Personal
Information Protection Law expects a utility to be able to tell)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class AccessAction:
    VIEW_CUSTOMER = "view_customer"     # opened a customer page (full names and numbers)
    EXPORT_TICKETS = "export_tickets"   # downloaded the ticket list as Excel
    EXPORT_HOUSEHOLDS = "export_households"  # downloaded the household list (full names, phones)
    ALL = (VIEW_CUSTOMER, EXPORT_TICKETS, EXPORT_HOUSEHOLDS)
    LABELS = {VIEW_CUSTOMER: "查看客户资料", EXPORT_TICKETS: "导出工单列表", EXPORT_HOUSEHOLDS: "导出住户名单"}


class PersonalDataAccess(db.Model):
    """One look at personal data: who (a snapshot of the name, kept if the account changes),
    when, what (the household, or the export's filters and row count), from where."""

    __tablename__ = "personal_data_access"
    __table_args__ = (Index("ix_personal_data_access_staff_at", "staff_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    staff_username: Mapped[str] = mapped_column(String(40))
    staff_name: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(24), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True)
    subject: Mapped[str] = mapped_column(String(200))      # e.g. "户号 10100006", "工单列表（未办结）"
    detail: Mapped[dict | None] = mapped_column(JSON)      # filters of an export, rows in it
    rows: Mapped[int | None] = mapped_column(Integer)
    client_ip: Mapped[str | None] = mapped_column(String(64))
