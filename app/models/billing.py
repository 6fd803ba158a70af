"""Heating seasons, bills and WeChat Pay payments. Money is integer fen everywhere."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.household import Household
from app.models.types import UTCDateTime, utcnow


class HeatingSeason(db.Model):
    __tablename__ = "heating_season"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)       # "2026-2027"
    starts_on: Mapped[date] = mapped_column(Date)                    # heating starts (e.g. Nov 15)
    ends_on: Mapped[date] = mapped_column(Date)                      # heating ends (e.g. Mar 15)
    due_on: Mapped[date] = mapped_column(Date)                       # pay by; late fees after
    unit_price_fen: Mapped[int] = mapped_column(Integer)             # per m² for the season
    # Late fee in ten-thousandths per day of the unpaid principal; None = the configured default.
    late_fee_bp_per_day: Mapped[int | None] = mapped_column(Integer)


class BillStatus:
    UNPAID = "unpaid"
    PARTIAL = "partial"
    PAID = "paid"
    WAIVED = "waived"
    OPEN = (UNPAID, PARTIAL)
    ALL = (UNPAID, PARTIAL, PAID, WAIVED)


class Bill(db.Model):
    __tablename__ = "bill"
    __table_args__ = (
        UniqueConstraint("household_id", "season_id"),
        CheckConstraint("amount_fen >= 0", name="amount_nonneg"),
        CheckConstraint("paid_fen >= 0", name="paid_nonneg"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("heating_season.id"), index=True)
    # Snapshot of what the amount was computed from, so later edits do not rewrite history.
    area_m2: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    unit_price_fen: Mapped[int] = mapped_column(Integer)
    discount_fen: Mapped[int] = mapped_column(Integer, default=0)
    discount_reason: Mapped[str | None] = mapped_column(String(100))
    amount_fen: Mapped[int] = mapped_column(Integer)         # area × price − discount
    paid_fen: Mapped[int] = mapped_column(Integer, default=0)          # principal paid
    late_fee_paid_fen: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12), default=BillStatus.UNPAID, index=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    household: Mapped[Household] = relationship()
    season: Mapped[HeatingSeason] = relationship()

    @property
    def outstanding_fen(self) -> int:
        return 0 if self.status == BillStatus.WAIVED else max(self.amount_fen - self.paid_fen, 0)


class PaymentState:
    CREATED = "created"
    PAID = "paid"
    CLOSED = "closed"
    REFUNDED = "refunded"
    ALL = (CREATED, PAID, CLOSED, REFUNDED)


class Payment(db.Model):
    """One WeChat Pay order. A bill is credited once per successful transaction."""

    __tablename__ = "payment"
    id: Mapped[int] = mapped_column(primary_key=True)
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    transaction_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    wechat_user_id: Mapped[int | None] = mapped_column(ForeignKey("wechat_user.id"), index=True)
    payer_openid: Mapped[str | None] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12), default=PaymentState.CREATED, index=True)
    prepay_id: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(127))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    items: Mapped[list["PaymentItem"]] = relationship(back_populates="payment", cascade="all, delete-orphan")


class PaymentItem(db.Model):
    """The part of a payment that goes to one bill: principal and late fee, fixed at order time.

    ``pending_bill_id`` is the bill's id while the payment is an open (``created``) order and
    NULL otherwise; its unique constraint is what makes "one pending order per bill" hold
    under concurrent requests (the second INSERT fails instead of both passing a check).
    """

    __tablename__ = "payment_item"
    __table_args__ = (UniqueConstraint("payment_id", "bill_id"), UniqueConstraint("pending_bill_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id"), index=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("bill.id"), index=True)
    principal_fen: Mapped[int] = mapped_column(Integer)
    late_fee_fen: Mapped[int] = mapped_column(Integer, default=0)
    pending_bill_id: Mapped[int | None] = mapped_column(Integer)

    payment: Mapped[Payment] = relationship(back_populates="items")
    bill: Mapped[Bill] = relationship()
