"""工单 and 报修 pages: a resident's own tickets through the sandbox's web sign-in; another
person's link refused politely; the same rules and services as the mini-program's API."""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from app.models import HouseholdBinding, Role, Ticket, TicketPhoto, TicketSource, TicketState, TicketType
from app.services import tickets, uploads
from app.services.actors import Actor


@pytest.fixture()
def home(db, make_area, make_household, make_crew, make_staff):
    """A household, the crew serving it (member, agent for closing)."""
    _, community, station = make_area()
    crew = make_crew(stations=[station])
    member = make_staff(role=Role.CREW_MEMBER, crew=crew, name="李师傅")
    agent = make_staff(role=Role.AGENT, name="客服小刘")
    household = make_household(community=community, station=station, owner_name="刘秀英")
    db.session.commit()
    return {"household": household, "crew": crew, "member": member, "agent": agent}


def _bind(db, phone, household):
    user = phone.user
    db.session.add(HouseholdBinding(wechat_user_id=user.id, household_id=household.id, proof="owner_name"))
    db.session.commit()
    return user


def _report(db, user, household, description="客厅暖气不热", **kw) -> Ticket:
    ticket = tickets.create_ticket(Actor.of_resident(user), type=TicketType.REPAIR, source=TicketSource.OFFICIAL_ACCOUNT,
                                   description=description, category="no_heat", household=household, **kw)
    db.session.commit()
    return ticket


def _close(db, ticket, home):
    member = Actor.of_staff(home["member"])
    if ticket.assignee_id is None:
        tickets.assign_ticket(ticket, Actor.of_staff(home["agent"]), staff=home["member"])
    tickets.accept_ticket(ticket, member)
    tickets.reply_ticket(ticket, member, "已更换阀门，暖气恢复")
    tickets.close_ticket(ticket, Actor.of_staff(home["agent"]), "已修复")
    db.session.commit()


def _stored_files() -> set:
    folder = uploads.upload_dir()
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def _jpeg(size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (180, 40, 40)).save(out, "JPEG")
    return out.getvalue()


def test_my_ticket_shows_its_timeline_deadlines_and_crew(h5, db, home, clock):
    me = h5.resident("刘秀英")
    me.sign_in()
    ticket = _report(db, _bind(db, me, home["household"]), home["household"])
    res = me.open(f"/t/{ticket.number}")
    html = res.get_data(as_text=True)
    assert res.status_code == 200
    assert ticket.number in html and "客厅暖气不热" in html and "创建工单" in html
    assert "完成时限" in html and "撤销报修" in html
    assert home["crew"].name in html


def test_another_persons_ticket_link_is_refused_politely_without_the_data(h5, db, home, make_household):
    owner, stranger = h5.resident("刘秀英"), h5.resident("路人")
    owner.sign_in()
    ticket = _report(db, _bind(db, owner, home["household"]), home["household"], description="卧室漏水很严重")
    res = stranger.open(f"/t/{ticket.number}")
    html = res.get_data(as_text=True)
    assert res.status_code == 403 and "text/html" in res.content_type
    assert "其他住户的工单" in html
    assert "卧室漏水" not in html and home["household"].address not in html
    # nor may they act on it
    res = stranger.post(f"/t/{ticket.number}/cancel", form_page="/me/bind")
    assert res.status_code == 403
    db.session.refresh(ticket)
    assert ticket.state != TicketState.CANCELLED


def test_a_deleted_tickets_link_is_a_404_page_not_json(h5, db, home):
    me = h5.resident()
    res = me.open("/t/GD20991231-999999")
    assert res.status_code == 404 and "text/html" in res.content_type
    assert "工单不存在" in res.get_data(as_text=True)


def test_the_ticket_list_pages_and_has_an_empty_state(h5, db, home, clock):
    me = h5.resident("刘秀英")
    empty = me.open("/t").get_data(as_text=True)
    assert "您还没有工单" in empty
    user = _bind(db, me, home["household"])
    made = [_report(db, user, home["household"], description=f"第{i}次报修") for i in range(12)]
    first = me.open("/t").get_data(as_text=True)
    assert "第 1 / 2 页" in first and made[-1].number in first and made[0].number not in first
    second = me.open("/t?page=2").get_data(as_text=True)
    assert made[0].number in second and made[-1].number not in second


def test_the_reporter_cancels_before_a_crew_accepts(h5, db, home, clock):
    me = h5.resident()
    me.sign_in()
    ticket = _report(db, _bind(db, me, home["household"]), home["household"])
    res = me.post(f"/t/{ticket.number}/cancel", {"reason": "已经好了"}, form_page=f"/t/{ticket.number}")
    assert res.status_code == 303
    db.session.refresh(ticket)
    assert ticket.state == TicketState.CANCELLED
    page = me.open(f"/t/{ticket.number}").get_data(as_text=True)
    assert "报修已撤销" in page and "撤销报修</button>" not in page


def test_rating_a_closed_ticket_once(h5, db, home, clock):
    me = h5.resident()
    me.sign_in()
    ticket = _report(db, _bind(db, me, home["household"]), home["household"])
    _close(db, ticket, home)
    page = me.open(f"/t/{ticket.number}").get_data(as_text=True)
    assert "评价本次服务" in page
    res = me.post(f"/t/{ticket.number}/rate", {"rating": "4", "comment": "师傅很耐心"}, form_page=f"/t/{ticket.number}")
    assert res.status_code == 303
    db.session.refresh(ticket)
    assert (ticket.rating, ticket.rating_comment) == (4, "师傅很耐心")
    again = me.post(f"/t/{ticket.number}/rate", {"rating": "1"}, form_page="/me/bind")
    assert again.status_code == 409 and "已评价过" in again.get_data(as_text=True)
    db.session.refresh(ticket)
    assert ticket.rating == 4


def test_a_rating_out_of_range_is_refused_and_changes_nothing(h5, db, home, clock):
    me = h5.resident()
    me.sign_in()
    ticket = _report(db, _bind(db, me, home["household"]), home["household"])
    _close(db, ticket, home)
    res = me.post(f"/t/{ticket.number}/rate", {"rating": "9"}, form_page=f"/t/{ticket.number}")
    assert res.status_code == 400 and "填写有误" in res.get_data(as_text=True)
    db.session.refresh(ticket)
    assert ticket.rating is None


def test_a_form_without_the_csrf_token_changes_nothing(h5, db, home, clock):
    me = h5.resident()
    me.sign_in()
    ticket = _report(db, _bind(db, me, home["household"]), home["household"])
    res = me.client.post(f"/t/{ticket.number}/cancel", data={"reason": "x"})
    assert res.status_code == 400 and "安全校验失败" in res.get_data(as_text=True)
    res = me.client.post(f"/t/{ticket.number}/cancel", data={"reason": "x", "csrf_token": "forged"})
    assert res.status_code == 400
    db.session.refresh(ticket)
    assert ticket.state != TicketState.CANCELLED


def test_report_a_repair_with_a_photo(h5, db, home, clock):
    me = h5.resident()
    me.sign_in()
    _bind(db, me, home["household"])
    form = me.open("/report").get_data(as_text=True)
    assert 'accept="image/*"' in form and "capture" in form
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    res = me.client.post("/report", data={
        "csrf_token": token, "household_id": str(home["household"].id), "category": "no_heat",
        "description": "卫生间暖气片冰凉", "location": "卫生间",
        "photos": [(io.BytesIO(_jpeg()), "a.jpg", "image/jpeg")]}, content_type="multipart/form-data")
    assert res.status_code == 303, res.get_data(as_text=True)
    ticket = db.session.query(Ticket).one()
    assert res.location == f"/t/{ticket.number}"
    assert ticket.source == TicketSource.OFFICIAL_ACCOUNT and ticket.reporter_id == me.user.id
    assert ticket.address.endswith("卫生间")
    photo = db.session.query(TicketPhoto).one()
    page = me.open(res.location).get_data(as_text=True)
    assert "我上传的照片" in page
    shown = me.client.get(f"/t/{ticket.number}/photos/{photo.id}")
    assert shown.status_code == 200 and shown.content_type == "image/jpeg"


@pytest.mark.parametrize("upload, message", [
    ((b"%PDF-1.4 not an image", "scan.jpg", "image/jpeg"), "图片"),
    ((b"\xff" * (uploads.MAX_BYTES + 10), "big.jpg", "image/jpeg"), "不能超过"),
])
def test_a_photo_that_is_not_an_image_or_too_big_stores_nothing(h5, db, home, clock, app, upload, message):
    me = h5.resident()
    me.sign_in()
    _bind(db, me, home["household"])
    token = re.search(r'name="csrf_token" value="([^"]+)"', me.open("/report").get_data(as_text=True)).group(1)
    data, name, kind = upload
    before = _stored_files()
    res = me.client.post("/report", data={
        "csrf_token": token, "household_id": str(home["household"].id), "category": "no_heat",
        "description": "不热", "photos": [(io.BytesIO(_jpeg()), "ok.jpg", "image/jpeg"), (io.BytesIO(data), name, kind)]},
        content_type="multipart/form-data")
    html = res.get_data(as_text=True)
    assert res.status_code in (400, 413) and "text/html" in res.content_type
    assert message in html
    assert db.session.query(Ticket).count() == 0 and db.session.query(TicketPhoto).count() == 0
    assert _stored_files() == before


def test_reporting_for_a_household_not_mine_is_refused(h5, db, home, make_household, clock):
    me = h5.resident()
    me.sign_in()
    _bind(db, me, home["household"])
    other = make_household()
    db.session.commit()
    token = re.search(r'name="csrf_token" value="([^"]+)"', me.open("/report").get_data(as_text=True)).group(1)
    res = me.client.post("/report", data={"csrf_token": token, "household_id": str(other.id),
                                          "category": "no_heat", "description": "不热"})
    assert res.status_code == 404 and "您未绑定该户" in res.get_data(as_text=True)
    assert db.session.query(Ticket).count() == 0


def test_report_without_a_bound_household_asks_to_bind(h5, db):
    me = h5.resident()
    page = me.open("/report").get_data(as_text=True)
    assert "请先绑定户号" in page
