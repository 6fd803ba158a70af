"""Refunds of WeChat Pay payments (money received twice for one bill, DESIGN §5)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.billing import Payment
from app.models.types import UTCDateTime, utcnow


class RefundState:
    PENDING = "pending"          # recorded here, not yet accepted by WeChat Pay
    PROCESSING = "processing"    # accepted by WeChat Pay (its status PROCESSING)
    SUCCESS = "success"          # the money is back with the payer
    CLOSED = "closed"            # WeChat Pay closed it (REFUND.CLOSED)
    ABNORMAL = "abnormal"        # WeChat Pay could not return it (REFUND.ABNORMAL): staff handle it
    FAILED = "failed"            # WeChat Pay refused the request for good (reason in last_error)
    ALL = (PENDING, PROCESSING, SUCCESS, CLOSED, ABNORMAL, FAILED)
    OPEN = (PENDING, PROCESSING)
    # Accepted by WeChat Pay: it appears in WeChat Pay's trade bill.
    ACCEPTED = (PROCESSING, SUCCESS, CLOSED, ABNORMAL)
    LABELS = {PENDING: "待提交", PROCESSING: "退款中", SUCCESS: "已退款", CLOSED: "已关闭",
              ABNORMAL: "退款异常", FAILED: "提交失败"}
    # WeChat Pay's refund status → ours
    FROM_WECHAT = {"PROCESSING": PROCESSING, "SUCCESS": SUCCESS, "CLOSED": CLOSED, "ABNORMAL": ABNORMAL}


class Refund(db.Model):
    """One WeChat Pay refund (``/v3/refund/domestic/refunds``) of part or all of a payment.

    ``out_refund_no`` is derived from what is refunded (one surplus refund per payment:
    ``RF`` + out_trade_no), so a retried request names the same refund and WeChat Pay
    refunds it once (“同一退款单号多次请求只退一笔”).
    """

    __tablename__ = "refund"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="amount_positive"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    out_refund_no: Mapped[str] = mapped_column(String(64), unique=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id"), index=True)
    refund_id: Mapped[str | None] = mapped_column(String(64), unique=True)   # WeChat Pay's number
    amount_fen: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12), default=RefundState.PENDING, index=True)
    reason: Mapped[str] = mapped_column(String(80))          # sent to WeChat Pay; the payer sees it
    detail: Mapped[str | None] = mapped_column(Text)         # for staff: why, which bills, which orders
    user_received_account: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)   # WeChat Pay's create_time
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    payment: Mapped[Payment] = relationship()

    @property
    def state_label(self) -> str:
        return RefundState.LABELS.get(self.state, self.state)


def surplus_refund_no(out_trade_no: str) -> str:
    """The out_refund_no of a payment's surplus refund (≤ 64 of [0-9A-Za-z_-|*@])."""
    return f"RF{out_trade_no}"
