"""Helpers of the payment tests: residents with bound households, orders over the real API,
and orders as the code before "one pending order per bill" made them (straight into the
database and WeChat Pay, no claim on the bill)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.models import Bill, Payment, PaymentItem, PaymentState
from app.services import billing
from mobile_api.auth import issue_token
from tests.factories import bind_wechat_user
from wechat import pay as wechat_pay


def resident(db, driver, api, household, *, follow: bool = True):
    """A sandbox person (following the official account, so notices reach them) who has
    bound ``household``; returns (api client with their token, WechatUser, sandbox person)."""
    person, user = bind_wechat_user(db, driver, household=household, follow=follow)
    db.session.commit()
    return api(issue_token(user)), user, person


def order(client, household, *bills):
    return client.post("/api/v1/payments", json={"household_id": household.id, "bill_ids": [b.id for b in bills]})


def legacy_order(db, user, household, bills) -> Payment:
    """An order for bills that may already be in another order — what two phones got before
    the fix: created here without claiming the bills, and at WeChat Pay."""
    as_of = billing.local_today()
    payment = Payment(out_trade_no=billing.new_out_trade_no(), wechat_user_id=user.id, state=PaymentState.CREATED,
                      description=f"供热费 户号{household.account_no}")
    for bill in bills:
        payment.items.append(PaymentItem(bill_id=bill.id, principal_fen=bill.outstanding_fen,
                                         late_fee_fen=billing.late_fee_fen(bill, as_of)))
    payment.amount_fen = sum(i.principal_fen + i.late_fee_fen for i in payment.items)
    db.session.add(payment)
    db.session.commit()
    payment.prepay_id = wechat_pay.jsapi_prepay(
        out_trade_no=payment.out_trade_no, description=payment.description, amount_fen=payment.amount_fen,
        openid=user.mp_openid, time_expire=payment.created_at + timedelta(hours=2), attach=f"household:{household.id}")
    db.session.commit()
    return payment


def fresh(db, model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def payments(db) -> list[Payment]:
    db.session.expire_all()
    return list(db.session.scalars(select(Payment).order_by(Payment.id)))


def second_bill(db, make_season, world, code="2025-2026", days_before=365) -> Bill:
    """Another (older) season's unpaid bill of the world's household."""
    today = world.season.due_on
    season = make_season(code=code, due_on=today - timedelta(days=days_before),
                         starts_on=today - timedelta(days=days_before + 10),
                         ends_on=today - timedelta(days=days_before - 100))
    billing.issue_bills(season, [world.household])
    db.session.commit()
    return db.session.scalar(select(Bill).where(Bill.household_id == world.household.id, Bill.season_id == season.id))
