"""A resident pays a bill end to end in Chromium at 375 px: WeChat's web sign-in, the bills, 缴费,
the sandbox's WeixinJSBridge sheet (支付), the result page and the receipt with its QR code.
Screenshots under artifacts/screenshots/; first-load sizes and times under artifacts/."""
from __future__ import annotations

from sqlalchemy import select

from app.models import Bill, BillStatus, Payment, PaymentState
from tests.web.conftest import screenshot
from tests.web.h5_support import WECHAT_PHONE, first_load, fits_a_phone, record_figures, resident_in_arrears, \
    sign_in_browser

PAGE_BUDGET_BYTES = 60_000      # a first load on a phone network: HTML, CSS and script together


def test_a_resident_pays_through_the_jsbridge_and_sees_the_receipt(app, db, live_app, h5, browser, open_page,
                                                                    make_area, make_household, make_season):
    liu = resident_in_arrears(db, h5, make_area, make_household, make_season)
    page = open_page(WECHAT_PHONE)
    sign_in_browser(page, f"{live_app.url}/pay", "刘秀英")
    page.wait_for_selector("[data-testid=pay-submit]")
    assert page.url == f"{live_app.url}/pay"
    fits_a_phone(page)
    screenshot(page, "h5-pay-bills-375")
    # Both seasons are chosen by default; the total shown is what the order will ask.
    chosen = page.text_content("[data-role=chosen-total]")

    page.click("[data-testid=pay-submit]")
    page.wait_for_selector("[data-testid=wxpay-sheet]")        # WeChat's payment sheet (the stand-in)
    payment = db.session.scalar(select(Payment))
    assert chosen == f"{payment.amount_fen / 100:,.2f} 元"
    assert page.text_content("[data-testid=wxpay-amount]") == f"¥{payment.amount_fen / 100:.2f}"
    screenshot(page, "h5-pay-sheet-375")
    page.click("[data-testid=wxpay-confirm]")

    page.wait_for_selector("[data-state=paid]")
    assert "缴费成功" in page.text_content("main")
    fits_a_phone(page)
    screenshot(page, "h5-pay-result-375")
    db.session.expire_all()
    assert db.session.scalar(select(Payment.state)) == PaymentState.PAID
    assert {db.session.get(Bill, b.id).status for b in liu.bills} == {BillStatus.PAID}

    page.click("[data-testid=receipt-link]")
    qr = page.wait_for_selector("[data-testid=receipt-qr] svg")
    assert qr.bounding_box()["width"] >= 120
    assert f"{payment.amount_fen / 100:,.2f} 元" in page.text_content("[data-testid=receipt-total]")
    fits_a_phone(page)
    screenshot(page, "h5-pay-receipt-375")

    figures = [first_load(browser, page, url) for url in (
        f"{live_app.url}/pay", f"{live_app.url}/pay/result/{payment.out_trade_no}",
        f"{live_app.url}/pay/receipt/{payment.out_trade_no}")]
    record_figures("pay", figures)
    assert all(f["bytes"] < PAGE_BUDGET_BYTES for f in figures), figures


def test_cancelling_the_sheet_pays_nothing_and_says_so(db, live_app, h5, open_page, make_area, make_household,
                                                       make_season):
    resident_in_arrears(db, h5, make_area, make_household, make_season)
    page = open_page(WECHAT_PHONE)
    sign_in_browser(page, f"{live_app.url}/pay", "刘秀英")
    page.click("[data-testid=pay-submit]")
    page.click("[data-testid=wxpay-cancel]")
    page.wait_for_selector("#pay-message:not([hidden])")
    assert "已取消支付，未扣款" in page.text_content("#pay-message")
    db.session.expire_all()
    assert db.session.scalar(select(Payment.state)) == PaymentState.CREATED
    assert h5.order(db.session.scalar(select(Payment.out_trade_no)))["trade_state"] == "NOTPAY"
