"""Residents and crews talking to the official account, driven through the sandbox."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from app.reference.knowledge_base import ENTRIES as FAQ
from app.models import (
    FaqEntry, HouseholdBinding, OutboxMessage, OutboxStatus, Role, Ticket, TicketPhoto, TicketSource, TicketState, TicketType, WechatUser,
)
from app.services import billing, tickets
from app.services.actors import Actor
from wechat import qr


@pytest.fixture()
def faq(db):
    """The knowledge base: shipped by migration 0015 (reference rows, the same in every test)."""


def _bound_resident(db, wechat, household):
    person = wechat.create_user(nickname="王阿姨")
    user = WechatUser(oa_openid=person["openid"], subscribed=True)
    db.session.add(user)
    db.session.flush()
    db.session.add(HouseholdBinding(wechat_user_id=user.id, household_id=household.id, proof="owner_name"))
    db.session.commit()
    return person["openid"], user


def test_resident_scans_the_binding_qr_on_a_bill_and_is_bound(db, wechat, make_household):
    home = make_household(owner_name="王秀英", owner_phone="13912345678")
    db.session.commit()
    code = qr.create_household_qr(home.account_no)  # the QR printed on the bill
    assert qr.png(code["url"]).startswith(b"\x89PNG")

    person = wechat.create_user(follow=False)
    scanned = wechat.send(person["openid"], type="event", event="subscribe", scene=qr.household_scene(home.account_no))
    assert "户主姓名" in scanned["reply"]["Content"]
    assert "绑定成功" in wechat.say(person["openid"], "王秀英")

    db.session.expire_all()
    user = db.session.scalar(select(WechatUser).where(WechatUser.oa_openid == person["openid"]))
    assert [b.household_id for b in user.bindings] == [home.id]
    assert user.subscribed


def test_wrong_proof_after_scanning_does_not_bind(db, wechat, make_household):
    home = make_household(owner_name="王秀英")
    db.session.commit()
    person = wechat.create_user()
    wechat.send(person["openid"], type="event", event="SCAN", scene=qr.household_scene(home.account_no))
    assert "不匹配" in wechat.say(person["openid"], "李四")
    db.session.expire_all()
    assert db.session.scalar(select(HouseholdBinding)) is None


def test_staff_binding_qr_binds_the_crew_members_wechat(db, wechat, make_staff):
    from app.services import binding

    staff = make_staff(role=Role.CREW_MEMBER, name="赵师傅")
    code = binding.issue_staff_bind_code(staff)
    db.session.commit()
    qr.create_staff_qr(code.code)
    person = wechat.create_user()
    reply = wechat.send(person["openid"], type="event", event="SCAN", scene=qr.staff_scene(code.code))
    assert "已绑定员工账号" in reply["reply"]["Content"]
    db.session.expire_all()
    assert db.session.scalar(select(WechatUser).where(WechatUser.oa_openid == person["openid"])).staff_id == staff.id


def test_asking_why_the_radiator_is_cold_gets_the_faq_answer(db, wechat, faq):
    person = wechat.create_user()
    expected = next(a for _, q, a, _ in FAQ if q == "暖气不热怎么办？")
    assert wechat.say(person["openid"], "暖气不热怎么办") == expected


def test_unanswerable_question_offers_a_person(db, wechat, faq):
    person = wechat.create_user()
    assert "人工" in wechat.say(person["openid"], "明天股市会涨吗")


def test_asking_for_a_person_opens_a_conversation_not_a_ticket(db, wechat):
    from app.models import Conversation

    person = wechat.create_user()
    reply = wechat.say(person["openid"], "人工")
    assert "人工客服" in reply
    db.session.expire_all()
    assert db.session.scalar(select(Ticket)) is None
    assert db.session.scalar(select(Conversation)).status == "waiting"  # tests/wechat/test_live_chat.py


def test_bill_command_answers_with_the_arrears_and_a_pay_link(db, wechat, make_household, make_season, clock):
    home = make_household(area_m2="100.00")
    season = make_season(unit_price_fen=2500)
    billing.issue_bills(season, [home])
    openid, _ = _bound_resident(db, wechat, home)
    reply = wechat.say(openid, "账单")
    assert home.account_no in reply
    assert "2,500.00元" in reply and "滞纳金" not in reply  # 100 m² × 25.00 元, not yet due
    assert "缴费" in reply


def test_bill_command_shows_the_late_fee_once_the_bill_is_overdue(db, wechat, make_household, make_season, clock):
    home = make_household(area_m2="100.00")
    season = make_season(unit_price_fen=2500, late_fee_bp_per_day=5)  # 0.05 % a day
    billing.issue_bills(season, [home])
    openid, _ = _bound_resident(db, wechat, home)
    clock.travel_to(datetime(2026, 12, 10, 2, 0, tzinfo=timezone.utc))  # ten days after 11-30
    reply = wechat.say(openid, "账单")
    assert "2,512.50元" in reply and "含滞纳金12.50元" in reply


def test_bill_command_without_a_household_explains_how_to_bind(db, wechat):
    person = wechat.create_user()
    assert "绑定" in wechat.say(person["openid"], "账单")


def _crew_with_task(db, wechat, make_household, make_crew, make_staff, count=1):
    home = make_household()
    crew = make_crew(stations=[home.station])
    member = make_staff(role=Role.CREW_MEMBER, crew=crew, name="李师傅")
    person = wechat.create_user(nickname="李师傅")
    db.session.add(WechatUser(oa_openid=person["openid"], subscribed=True, staff_id=member.id))
    made = [tickets.create_ticket(Actor.system(), type=TicketType.REPAIR, source=TicketSource.PHONE,
                                  description=f"暖气不热{i}", household=home, category="no_heat")
            for i in range(count)]
    db.session.commit()
    assert all(t.assignee_id == member.id for t in made)
    return person["openid"], made


def test_crew_photo_lands_on_their_task_and_is_fetched(db, wechat, worker, app, make_household, make_crew, make_staff):
    openid, (task,) = _crew_with_task(db, wechat, make_household, make_crew, make_staff)
    reply = wechat.send(openid, type="image")["reply"]["Content"]
    assert task.number in reply
    # The download is promised in the photo's own transaction (kept even if Redis is down) …
    promise = db.session.scalar(select(OutboxMessage).where(OutboxMessage.topic == "media.ticket_photo"))
    assert promise is not None and promise.status != OutboxStatus.DONE
    worker()  # … and kept by the outbox's delivery job
    db.session.expire_all()
    assert db.session.get(OutboxMessage, promise.id).status == OutboxStatus.DONE
    photo = db.session.scalar(select(TicketPhoto).where(TicketPhoto.ticket_id == task.id))
    assert promise.payload == {"photo_id": photo.id}
    assert photo.media_id and photo.path and photo.content_type == "image/jpeg"
    from pathlib import Path
    assert (Path(app.config["UPLOAD_DIR"]) / photo.path).read_bytes().startswith(b"\xff\xd8")


def test_crew_with_several_tasks_is_asked_which_one(db, wechat, make_household, make_crew, make_staff):
    openid, made = _crew_with_task(db, wechat, make_household, make_crew, make_staff, count=2)
    question = wechat.send(openid, type="image")["reply"]["Content"]
    assert "请回复序号" in question
    listed = [t for t in made if t.number in question]
    assert len(listed) == 2
    second = sorted(made, key=lambda t: t.finish_by)[1]
    assert second.number in wechat.say(openid, "2")
    db.session.expire_all()
    assert [p.ticket_id for p in db.session.scalars(select(TicketPhoto))] == [second.id]


def test_crew_location_is_kept_as_last_known_position(db, wechat, make_household, make_crew, make_staff):
    openid, (task,) = _crew_with_task(db, wechat, make_household, make_crew, make_staff)
    wechat.send(openid, type="location", latitude=41.8057, longitude=123.4315, label="和平区某小区")
    db.session.expire_all()
    staff = db.session.get(Ticket, task.id).assignee
    assert (round(staff.last_latitude, 4), round(staff.last_longitude, 4)) == (41.8057, 123.4315)
    assert staff.last_located_at is not None


def test_progress_lists_the_residents_open_tickets(db, wechat, make_household):
    home = make_household()
    openid, user = _bound_resident(db, wechat, home)
    t = tickets.create_ticket(Actor.of_resident(user), type=TicketType.REPAIR, source=TicketSource.OFFICIAL_ACCOUNT,
                              description="卧室暖气片不热", household=home)
    db.session.commit()
    reply = wechat.say(openid, "进度")
    assert t.number in reply and TicketState.LABELS[t.state] in reply


def test_paid_up_household_is_thanked_without_a_pay_link(db, wechat, make_household, make_season):
    home = make_household(area_m2="80.00")
    season = make_season(unit_price_fen=2500)
    billing.issue_bills(season, [home])
    from app.models import Bill
    bill = db.session.scalar(select(Bill))
    bill.paid_fen, bill.status = bill.amount_fen, "paid"
    openid, _ = _bound_resident(db, wechat, home)
    reply = wechat.say(openid, "账单")
    assert "已缴清" in reply and "点击缴费" not in reply
