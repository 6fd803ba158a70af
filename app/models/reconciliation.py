"""Daily reconciliation of our payments and refunds against WeChat Pay's trade bill."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class MismatchKind:
    MISSING_LOCAL = "missing_local"      # in WeChat Pay's bill, not here
    MISSING_REMOTE = "missing_remote"    # here, not in WeChat Pay's bill
    AMOUNT = "amount"                    # both sides, amounts differ
    STATE = "state"                      # both sides, states differ
    ALL = (MISSING_LOCAL, MISSING_REMOTE, AMOUNT, STATE)
    LABELS = {MISSING_LOCAL: "我方缺失", MISSING_REMOTE: "微信支付缺失", AMOUNT: "金额不符", STATE: "状态不符"}


class ReconciliationRun(db.Model):
    """The result of reconciling one day (Beijing calendar day); a new run replaces it."""

    __tablename__ = "reconciliation_run"
    id: Mapped[int] = mapped_column(primary_key=True)
    bill_date: Mapped[date] = mapped_column(Date, unique=True)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    bill_available: Mapped[bool] = mapped_column(default=True)   # False: WeChat Pay had no bill (no trades)
    wechat_payments: Mapped[int] = mapped_column(Integer, default=0)
    wechat_payment_fen: Mapped[int] = mapped_column(Integer, default=0)
    wechat_refunds: Mapped[int] = mapped_column(Integer, default=0)
    wechat_refund_fen: Mapped[int] = mapped_column(Integer, default=0)
    our_payments: Mapped[int] = mapped_column(Integer, default=0)
    our_payment_fen: Mapped[int] = mapped_column(Integer, default=0)
    our_refunds: Mapped[int] = mapped_column(Integer, default=0)
    our_refund_fen: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    mismatch_count: Mapped[int] = mapped_column(Integer, default=0)

    mismatches: Mapped[list["ReconciliationMismatch"]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="ReconciliationMismatch.id")


class ReconciliationMismatch(db.Model):
    """One difference between WeChat Pay's bill and our records; open until staff resolve it."""

    __tablename__ = "reconciliation_mismatch"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_run.id", ondelete="CASCADE"), index=True)
    bill_date: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    record: Mapped[str] = mapped_column(String(8))            # payment | refund
    out_trade_no: Mapped[str | None] = mapped_column(String(32))
    out_refund_no: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    our_amount_fen: Mapped[int | None] = mapped_column(Integer)
    wechat_amount_fen: Mapped[int | None] = mapped_column(Integer)
    our_state: Mapped[str | None] = mapped_column(String(16))
    wechat_state: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(300))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    resolution_note: Mapped[str | None] = mapped_column(String(300))

    run: Mapped[ReconciliationRun] = relationship(back_populates="mismatches")

    @property
    def kind_label(self) -> str:
        return MismatchKind.LABELS.get(self.kind, self.kind)
