"""缴费 pages of the official account (/pay), over real HTTP: WeChat's web sign-in, the JSAPI order
with the official account's appid, the sandbox's WeixinJSBridge (paySign checked), result and
receipt pages, and bad input answered with a Chinese page that changes nothing."""
from __future__ import annotations

import json
import re

import pytest
import requests
from sqlalchemy import select

from app.models import Bill, BillStatus, Payment, PaymentState
from app.services import billing
from tests.web.conftest import csrf_from
from tests.web.h5_support import H5_NOW, is_page, open_as, resident_in_arrears, wechat_person
from wechat import pay as wechat_pay

LATE_FEE_BP = 5       # the default late fee, 0.05 % a day


def yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def pay_params(html: str) -> dict:
    found = re.search(r"var params = (\{.*?\});", html)
    assert found, "the order page carries no payment parameters"
    return json.loads(found.group(1))


def order_bills(session, base, household, *bills, csrf=None):
    page = session.get(f"{base}/pay", timeout=30).text
    return session.post(f"{base}/pay/orders", data={
        "csrf_token": csrf or csrf_from(page), "household_id": household.id, "bill_ids": [b.id for b in bills]},
        timeout=30, allow_redirects=False)


@pytest.fixture()
def liu(db, h5, make_area, make_household, make_season):
    return resident_in_arrears(db, h5, make_area, make_household, make_season)


def test_bills_by_season_with_late_fees_as_of_today(app, live_app, h5, liu):
    s = requests.Session()
    res = open_as(s, f"{live_app.url}/pay", liu.person["openid"])
    assert res.status_code == 200 and is_page(res) and res.url.startswith(f"{live_app.url}/pay")
    page = res.text
    assert f"户号 {liu.household.account_no}" in page
    current, older = liu.bills
    principal = 80 * 2400                                   # 80 m² at 24.00 元
    days = (H5_NOW.date() - current.season.due_on).days
    assert days == 40
    late = principal * LATE_FEE_BP * days // 10000          # exact here: 38.40 元
    assert f"滞纳金 {yuan(late)} 元" in page and f"{yuan(principal + late)} 元" in page
    assert page.index("2030-2031 供暖季") < page.index("2029-2030 供暖季")   # newest season first
    arrears = billing.household_arrears(liu.household.id, H5_NOW.date())
    assert f"{yuan(arrears.total_due_fen)} 元" in page


def test_a_resident_without_a_household_is_sent_to_bind_one(db, live_app, h5):
    person, _ = wechat_person(db, h5, nickname="新住户")
    res = open_as(requests.Session(), f"{live_app.url}/pay", person["openid"])
    assert res.status_code == 200 and "还没有绑定户号" in res.text
    assert 'href="/me/bind"' in res.text


def test_pay_through_the_jsbridge_then_result_and_receipt(app, db, live_app, h5, liu):
    s = requests.Session()
    open_as(s, f"{live_app.url}/pay", liu.person["openid"])
    current = liu.bills[0]
    res = order_bills(s, live_app.url, liu.household, current)
    assert res.status_code == 303, res.text
    page = s.get(live_app.url + res.headers["Location"], timeout=30)
    params = pay_params(page.text)
    no = db.session.scalar(select(Payment.out_trade_no))
    # WeChat Pay's order belongs to the official account and its openid of the payer.
    order = h5.order(no)
    assert order["appid"] == app.config["WECHAT_APPID"] == params["appId"]
    assert order["payer"]["openid"] == liu.person["openid"]
    assert f'{h5.base}/jsbridge.js' in page.text                   # the sandbox's WeixinJSBridge

    checked = h5.bridge("check", params)
    assert checked["ok"] and checked["total"] == order["amount"]["total"]
    paid = h5.bridge("pay", params)
    assert paid == {"ok": True, "notified": True}

    result = s.get(f"{live_app.url}/pay/result/{no}", timeout=30)
    assert 'data-state="paid"' in result.text and "缴费成功" in result.text
    db.session.expire_all()
    assert db.session.get(Bill, current.id).status == BillStatus.PAID
    assert db.session.get(Bill, liu.bills[1].id).status == BillStatus.UNPAID
    receipt = s.get(f"{live_app.url}/pay/receipt/{no}", timeout=30)
    assert receipt.status_code == 200 and "<svg" in receipt.text
    assert f"{yuan(order['amount']['total'])} 元" in receipt.text
    verify = re.search(r'href="(http[^"]+/r/[^"]+)"', receipt.text).group(1)
    # The link the 缴费成功 notice carries (receipt_url) opens the public receipt page.
    checked_page = requests.get(verify, timeout=30)
    assert checked_page.status_code == 200 and is_page(checked_page) and "收据有效" in checked_page.text
    # Paying again is refused by WeChat (the order is paid).
    assert h5.bridge("pay", params) == {"ok": False, "err_desc": "该订单已支付"}


def test_a_forged_pay_sign_is_refused_by_the_bridge_and_nothing_is_paid(db, live_app, h5, liu):
    s = requests.Session()
    open_as(s, f"{live_app.url}/pay", liu.person["openid"])
    res = order_bills(s, live_app.url, liu.household, liu.bills[0])
    params = pay_params(s.get(live_app.url + res.headers["Location"], timeout=30).text)
    forged = dict(params, paySign=params["paySign"][:-8] + ("A" * 8 if not params["paySign"].endswith("A" * 8)
                                                           else "B" * 8))
    assert h5.bridge("check", forged) == {"ok": False, "err_desc": "支付验证签名失败"}
    assert h5.bridge("pay", forged)["ok"] is False
    # Signed right, but for the mini-program's appid: not this official account's page.
    assert h5.bridge("pay", dict(params, appId="wx_other_app"))["ok"] is False
    other_amount = dict(params, timeStamp=str(int(params["timeStamp"]) + 1))   # signed values changed
    assert h5.bridge("pay", other_amount)["err_desc"] == "支付验证签名失败"
    no = db.session.scalar(select(Payment.out_trade_no))
    assert h5.order(no)["trade_state"] == "NOTPAY"
    db.session.expire_all()
    assert db.session.scalar(select(Payment.state)) == PaymentState.CREATED
    # The resident can come back to the order and pay it for real.
    assert h5.bridge("pay", params)["ok"] is True


def _no_change(db, before: list):
    db.session.expire_all()
    assert [(p.out_trade_no, p.state) for p in db.session.scalars(select(Payment).order_by(Payment.id))] == before


def test_bad_input_gets_a_chinese_page_and_changes_nothing(app, db, live_app, h5, liu, make_household):
    s = requests.Session()
    page = open_as(s, f"{live_app.url}/pay", liu.person["openid"]).text
    csrf = csrf_from(page)
    stranger = make_household(owner_name="陌生人")
    billing.issue_bills(liu.bills[0].season, [stranger])
    db.session.commit()
    foreign_bill = db.session.scalar(select(Bill).where(Bill.household_id == stranger.id))

    # A household not bound to this WeChat.
    res = order_bills(s, live_app.url, stranger, foreign_bill, csrf=csrf)
    assert res.status_code == 404 and is_page(res) and "您未绑定该户" in res.text
    # A bill of another household, under one's own household.
    res = s.post(f"{live_app.url}/pay/orders", data={"csrf_token": csrf, "household_id": liu.household.id,
                                                      "bill_ids": [foreign_bill.id]}, timeout=30)
    assert res.status_code == 404 and "账单不存在" in res.text
    # Nothing chosen; not a number.
    res = s.post(f"{live_app.url}/pay/orders", data={"csrf_token": csrf, "household_id": liu.household.id},
                 timeout=30)
    assert res.status_code == 400 and "请选择要缴纳的账单" in res.text
    res = s.post(f"{live_app.url}/pay/orders", data={"csrf_token": csrf, "household_id": liu.household.id,
                                                      "bill_ids": ["1 OR 1=1"]}, timeout=30)
    assert res.status_code == 400 and is_page(res)
    # Without the form's CSRF token.
    res = s.post(f"{live_app.url}/pay/orders", data={"household_id": liu.household.id,
                                                      "bill_ids": [liu.bills[0].id]}, timeout=30)
    assert res.status_code == 400 and is_page(res)
    _no_change(db, [])

    # Someone else in the family is paying this bill right now: refused, their order kept.
    other, _ = wechat_person(db, h5, nickname="刘秀英的儿子", household=liu.household)
    other_session = requests.Session()
    open_as(other_session, f"{live_app.url}/pay", other["openid"])
    assert order_bills(other_session, live_app.url, liu.household, liu.bills[0]).status_code == 303
    theirs = db.session.scalar(select(Payment.out_trade_no))
    res = order_bills(s, live_app.url, liu.household, liu.bills[0], csrf=csrf)
    assert res.status_code == 409 and "正在由其他微信用户支付" in res.text
    _no_change(db, [(theirs, PaymentState.CREATED)])
    assert h5.order(theirs)["trade_state"] == "NOTPAY"
    # Their order, its receipt and result pages are not this resident's.
    for path in (f"/pay/orders/{theirs}", f"/pay/result/{theirs}", f"/pay/receipt/{theirs}"):
        res = s.get(live_app.url + path, timeout=30)
        assert res.status_code == 404 and is_page(res) and "订单不存在" in res.text

    # A paid bill.
    params = pay_params(other_session.get(f"{live_app.url}/pay/orders/{theirs}", timeout=30).text)
    assert h5.bridge("pay", params)["ok"]
    res = order_bills(s, live_app.url, liu.household, liu.bills[0], csrf=csrf)
    assert res.status_code == 409 and "已缴清，请勿重复缴费" in res.text
    _no_change(db, [(theirs, PaymentState.PAID)])


def test_the_sandbox_takes_official_account_orders_only_with_the_accounts_openid(app, h5, liu):
    common = dict(out_trade_no="HPH5APPID0001", description="供热费", amount_fen=100,
                  appid=app.config["WECHAT_APPID"])
    with pytest.raises(wechat_pay.PayRejected) as refused:
        wechat_pay.jsapi_prepay(openid=liu.person["mp_openid"], **common)      # the mini-program's openid
    assert refused.value.message == "appid和openid不匹配"
    assert wechat_pay.jsapi_prepay(openid=liu.person["openid"], **common).startswith("wx")
