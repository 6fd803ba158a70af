"""Crew pages inside WeChat (/mp/task, /mp/tasks) over real HTTP: the work-order QR URL signs a
crew member in through WeChat's web authorisation and opens their task; the actions are the
crew API's (same services and rules); residents and other crews get a polite refusal."""
from __future__ import annotations

import io

import requests
from PIL import Image
from sqlalchemy import select

from app.models import Staff, Ticket, TicketPhoto, TicketState
from app.links import task_url
from tests.web.conftest import csrf_from
from tests.web.h5_crew.conftest import jpeg
from tests.web.h5_support import is_page, open_as


def test_the_work_order_qr_opens_the_task_and_the_crew_member_works_it(app, db, live_app, h5, crew_world):
    w = crew_world
    url = task_url(w.ticket)
    assert url.startswith(live_app.url + "/mp/task?id=")
    s = requests.Session()
    res = open_as(s, url, w.member_person["openid"])
    assert res.status_code == 200 and is_page(res) and res.url == url
    assert w.ticket.number in res.text and "暖气片不热" in res.text and 'data-testid="accept"' in res.text
    csrf = csrf_from(res.text)

    res = s.post(f"{live_app.url}/mp/tasks/{w.ticket.id}/accept", data={"csrf_token": csrf}, timeout=30)
    assert res.status_code == 200 and "已接单" in res.text
    again = s.post(f"{live_app.url}/mp/tasks/{w.ticket.id}/accept", data={"csrf_token": csrf}, timeout=30)
    assert again.status_code == 409 and is_page(again)          # the service's rule, once only

    res = s.post(f"{live_app.url}/mp/tasks/{w.ticket.id}/reply", data={"csrf_token": csrf, "reply": "已更换阀门"},
                 files=[("photos", ("fixed.jpg", jpeg(), "image/jpeg"))], timeout=30)
    assert res.status_code == 200 and "处理结果已提交" in res.text
    db.session.expire_all()
    ticket = db.session.get(Ticket, w.ticket.id)
    assert ticket.state == TicketState.REPLIED and ticket.reply == "已更换阀门"
    photos = db.session.scalars(select(TicketPhoto).where(TicketPhoto.ticket_id == ticket.id)).all()
    assert len(photos) == 1 and photos[0].path and photos[0].uploaded_by_kind == "staff"
    # The task page shows the photo itself, served to those who may see the task.
    photo_url = f"{live_app.url}/mp/tasks/{ticket.id}/photos/{photos[0].id}"
    assert 'data-testid="event-photos"' in res.text and f'src="/mp/tasks/{ticket.id}/photos/{photos[0].id}"' in res.text
    shown = s.get(photo_url, timeout=30)
    assert shown.status_code == 200 and shown.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(shown.content)).size == (40, 30)        # the stored photo itself
    stranger = requests.Session()
    open_as(stranger, f"{live_app.url}/mp/tasks", w.stranger_person["openid"])
    assert stranger.get(photo_url, timeout=30).status_code == 404
    assert s.get(f"{live_app.url}/mp/tasks/{ticket.id + 1}/photos/{photos[0].id}", timeout=30).status_code == 404

    # The crew lead sees the crew's task too; the inbox lists only open tasks.
    lead = requests.Session()
    assert open_as(lead, url, w.lead_person["openid"]).status_code == 200
    assert lead.get(photo_url, timeout=30).status_code == 200
    assert w.ticket.number not in open_as(lead, f"{live_app.url}/mp/tasks", w.lead_person["openid"]).text


def test_residents_and_other_crews_get_a_polite_refusal(db, live_app, h5, crew_world):
    w = crew_world
    url = task_url(w.ticket)
    res = open_as(requests.Session(), url, w.resident.person["openid"])
    assert res.status_code == 403 and is_page(res) and "仅供负责的维修人员查看" in res.text
    assert "暖气片不热" not in res.text
    stranger = requests.Session()
    res = open_as(stranger, url, w.stranger_person["openid"])
    assert res.status_code == 404 and is_page(res) and "没有派给您或您的班组" in res.text
    assert "暖气片不热" not in res.text
    # Acting on it by posting straight to the action is refused the same way, nothing changes.
    csrf = csrf_from(open_as(stranger, f"{live_app.url}/mp/tasks", w.stranger_person["openid"]).text)
    res = stranger.post(f"{live_app.url}/mp/tasks/{w.ticket.id}/accept", data={"csrf_token": csrf}, timeout=30)
    assert res.status_code == 404
    # A link whose number does not match the id (edited by hand) opens nothing either.
    res = open_as(requests.Session(), url.replace(w.ticket.number, "GD00000000-000000"), w.member_person["openid"])
    assert res.status_code == 404
    db.session.expire_all()
    assert db.session.get(Ticket, w.ticket.id).state == TicketState.ASSIGNED


def test_forward_needs_a_reason_and_location_is_recorded(db, live_app, h5, crew_world):
    w = crew_world
    s = requests.Session()
    page = open_as(s, task_url(w.ticket), w.member_person["openid"]).text
    csrf = csrf_from(page)
    res = s.post(f"{live_app.url}/mp/tasks/{w.ticket.id}/forward", data={"csrf_token": csrf,
                                                                          "crew_id": w.other_crew.id}, timeout=30)
    assert res.status_code == 400 and is_page(res) and "填写有误" in res.text
    db.session.expire_all()
    assert db.session.get(Ticket, w.ticket.id).crew_id == w.crew.id

    res = s.post(f"{live_app.url}/mp/location", data={"csrf_token": csrf, "latitude": "39.1201",
                                                       "longitude": "117.2002", "label": "和平区南京路",
                                                       "back": w.ticket.id}, timeout=30)
    assert res.status_code == 200 and "位置已上报" in res.text
    db.session.expire_all()
    member = db.session.get(Staff, w.member.id)
    assert (member.last_latitude, member.last_longitude, member.last_location_label) == (39.1201, 117.2002, "和平区南京路")
    res = s.post(f"{live_app.url}/mp/location", data={"csrf_token": csrf, "latitude": "91", "longitude": "0"},
                 timeout=30)
    assert res.status_code == 400

    res = s.post(f"{live_app.url}/mp/tasks/{w.ticket.id}/forward", data={
        "csrf_token": csrf, "crew_id": w.other_crew.id, "reason": "不属于本班组片区"}, timeout=30)
    assert res.status_code == 200 and "已转办" in res.text
    db.session.expire_all()
    assert db.session.get(Ticket, w.ticket.id).crew_id == w.other_crew.id
