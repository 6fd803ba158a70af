"""A resident and a crew member use the mini-program over real HTTP, with the WeChat sandbox
playing WeChat and WeChat Pay (login, pay notifications, pushes)."""
from __future__ import annotations

import base64
import io
import threading

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from PIL import Image
from sqlalchemy import select

from app.models import Bill, BillStatus, Payment, PaymentState, Ticket, TicketState, WechatUser
from app.services import tickets
from app.services.actors import Actor
from tests.mobile_api.conftest import bind_staff_wechat, jpeg_with_exif
from wechat import templates as wechat_templates


def _login(api, driver, openid):
    answer = api().post("/api/v1/auth/login", json={"code": driver.login_code(openid)})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _inbox_text(driver, openid) -> str:
    return str(driver.inbox(openid))


def test_resident_pays_reports_a_repair_and_rates_it_with_the_crew_over_wechat(
        app, db, pay_wechat, api, world, worker, merchant_key_path):
    driver = pay_wechat
    crew_person, _ = bind_staff_wechat(db, driver, world.member)
    db.session.commit()
    resident = driver.create_user(follow=True)

    # Log in with a wx.login code; a second use of the code is refused.
    code = driver.login_code(resident["openid"])
    login = api().post("/api/v1/auth/login", json={"code": code})
    assert login.status_code == 200 and login.json()["roles"] == ["resident"]
    assert api().post("/api/v1/auth/login", json={"code": code}).status_code == 401
    me = api(login.json()["token"])

    # In wx.requestSubscribeMessage the resident allows ticket-progress messages: recorded.
    template = wechat_templates.registry().subscribe("ticket_updated").template_id
    driver._post(f"/users/{resident['openid']}/consent", json={"template_id": template})
    consent = me.post("/api/v1/subscriptions", json={"template_ids": [template]})
    assert consent.status_code == 200 and consent.json()["items"] == [{"template_id": template, "remaining": 1}]

    # Bind with proof: a wrong name is refused, the last 4 phone digits work.
    wrong = me.post("/api/v1/households/bind", json={"account_no": world.household.account_no, "owner_name": "李四"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "proof_mismatch"
    bound = me.post("/api/v1/households/bind", json={"account_no": world.household.account_no, "phone_last4": "1234"})
    assert bound.status_code == 201, bound.text
    hid = bound.json()["id"]

    # Bills with the late fee as of today (due 10 days ago).
    bills = me.get(f"/api/v1/households/{hid}/bills").json()
    item = bills["items"][0]
    assert item["late_fee_fen"] > 0 and item["total_due_fen"] == item["outstanding_fen"] + item["late_fee_fen"]
    assert bills["arrears_total_fen"] == item["total_due_fen"]

    # Pay: a JSAPI order and wx.requestPayment parameters signed with the merchant key.
    paid = me.post("/api/v1/payments", json={"household_id": hid, "bill_ids": [item["id"]]})
    assert paid.status_code == 201, paid.text
    order = paid.json()
    params = order["pay_params"]
    assert params["signType"] == "RSA" and params["package"].startswith("prepay_id=wx")
    with open(merchant_key_path, "rb") as f:
        public = serialization.load_pem_private_key(f.read(), password=None).public_key()
    signed = f"{app.config['MINIAPP_APPID']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    public.verify(base64.b64decode(params["paySign"]), signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert order["amount_fen"] == item["total_due_fen"]

    # The payer pays; WeChat Pay's signed notification reaches /pay/notify and is accepted.
    no = order["out_trade_no"]
    first = driver.pay(no)
    assert first["notification"]["delivered"] is True, first
    # 20 copies at once: every one is acknowledged, the bill is credited once.
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(driver.notify(no))) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 20 and all(a["delivered"] for a in answers), answers
    db.session.expire_all()
    bill = db.session.get(Bill, item["id"])
    assert bill.status == BillStatus.PAID and bill.paid_fen == bill.amount_fen
    assert bill.late_fee_paid_fen == item["late_fee_fen"]
    payment = db.session.scalar(select(Payment).where(Payment.out_trade_no == no))
    assert payment.state == PaymentState.PAID and payment.transaction_id == first["order"]["transaction_id"]

    # A forged notification (signed with another key) is refused the way WeChat Pay expects.
    from tests.mobile_api.test_pay_notify import forged_headers

    forged = api().post("/pay/notify", data=b'{"id":"x"}', headers=forged_headers(driver, b'{"id":"x"}'))
    assert forged.status_code == 401 and forged.json()["code"] == "FAIL"

    # The client asks again (uncertain): paid. Receipt with a QR code and its verification page.
    assert me.get(f"/api/v1/payments/{no}").json()["state"] == "paid"
    receipt = me.get(f"/api/v1/payments/{no}/receipt").json()
    assert receipt["qr_code"].startswith("data:image/png;base64,")
    page = api().get(receipt["verify_url"].replace(app.config["PUBLIC_BASE_URL"], ""))
    assert page.status_code == 200 and "收据有效" in page.text and world.household.account_no in page.text

    # Report a repair with two photos; EXIF is stripped from what is stored.
    photos = [("photos", (f"p{i}.jpg", jpeg_with_exif(), "image/jpeg")) for i in range(2)]
    created = me.post("/api/v1/repairs", data={"household_id": hid, "category": "no_heat",
                                               "description": "卧室暖气不热", "location": "主卧"}, files=photos)
    assert created.status_code == 201, created.text
    ticket_id = created.json()["id"]
    assert created.json()["state"] == "assigned" and len(created.json()["photos"]) == 2
    stored = me.get(created.json()["photos"][0]["url"])
    assert stored.status_code == 200
    assert not Image.open(io.BytesIO(stored.content)).getexif()

    # The crew member gets a WeChat push, logs in to the mini-program and sees the task.
    worker()
    assert created.json()["number"] in _inbox_text(driver, crew_person["openid"])
    crew_login = _login(api, driver, crew_person["openid"])
    assert "crew_member" in crew_login["roles"]
    crew = api(crew_login["token"])
    inbox = crew.get("/api/v1/tasks").json()
    assert [t["id"] for t in inbox["items"]] == [ticket_id] and inbox["counts"] == {"assigned": 1}

    # Accept, then reply with a photo; the resident is pushed and sees the whole timeline.
    assert crew.post(f"/api/v1/tasks/{ticket_id}/accept").status_code == 200
    replied = crew.post(f"/api/v1/tasks/{ticket_id}/reply", data={"reply": "已排气，暖气恢复"},
                        files=[("photos", ("done.jpg", jpeg_with_exif((20, 200, 20)), "image/jpeg"))])
    assert replied.status_code == 200, replied.text
    worker()
    # One subscribe consent carries one message: the first change since the consent (接单;
    # 派单 has its own template, not consented to) reaches the mini-program-only resident.
    assert "已接单" in _inbox_text(driver, resident["openid"])
    detail = me.get(f"/api/v1/repairs/{ticket_id}").json()
    assert [e["action"] for e in detail["timeline"]] == ["created", "assigned", "accepted", "replied"]
    assert len(detail["timeline"][-1]["photos"]) == 1

    # Staff close it (service call until the console exists); the resident rates it once.
    ticket = db.session.get(Ticket, ticket_id)
    tickets.close_ticket(ticket, Actor.of_staff(world.agent), "已修复，如有问题请再联系")
    db.session.commit()
    rated = me.post(f"/api/v1/repairs/{ticket_id}/rate", json={"rating": 5, "comment": "师傅很专业"})
    assert rated.status_code == 200 and rated.json()["rating"] == 5
    assert me.post(f"/api/v1/repairs/{ticket_id}/rate", json={"rating": 1}).status_code == 409
    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id).state == TicketState.CLOSED


def test_login_joins_the_official_account_user_by_unionid(app, db, pay_wechat, api):
    person = pay_wechat.create_user(follow=True)
    db.session.add(WechatUser(oa_openid=person["openid"], unionid=person["unionid"], subscribed=True))
    db.session.commit()
    _login(api, pay_wechat, person["openid"])
    db.session.expire_all()
    users = db.session.scalars(select(WechatUser)).all()
    assert len(users) == 1 and users[0].mp_openid == person["mp_openid"]


def test_refresh_gives_a_new_token_and_a_forged_token_is_refused(app, db, pay_wechat, api):
    person = pay_wechat.create_user()
    login = _login(api, pay_wechat, person["openid"])
    token = login["token"]
    assert login["refresh_token"] and login["refresh_expires_in"] == 7 * 86400
    refreshed = api().post("/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]})
    assert refreshed.status_code == 200 and refreshed.json()["token"]
    assert refreshed.json()["refresh_token"] != login["refresh_token"]
    assert api(refreshed.json()["token"]).get("/api/v1/households").status_code == 200
    assert api(token[:-2] + "xx").get("/api/v1/households").status_code == 401
    assert api(refreshed.json()["token"]).post("/api/v1/auth/logout").status_code == 204
    assert api(refreshed.json()["token"]).get("/api/v1/households").status_code == 401
