"""Every endpoint × every role × another person's object → refused; and no token → 401."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from app.models import HouseholdBinding, Payment, TicketSource, TicketType, WechatUser
from app.services import tickets
from app.services.actors import Actor
from app.services.billing import create_payment, issue_bills
from app.services.uploads import store_image
from mobile_api.auth import issue_token
from tests.mobile_api.conftest import jpeg_with_exif


def _jpeg():
    return (io.BytesIO(jpeg_with_exif()), "p.jpg", "image/jpeg")


@pytest.fixture()
def two_worlds(db, world, make_household, make_staff):
    """Resident A (household, bill, payment, ticket with a photo held by crew member M) and
    resident B with their own household; M's colleague-in-another-crew O; an agent."""
    a = WechatUser(mp_openid="mp-a")
    b = WechatUser(mp_openid="mp-b")
    m_user = WechatUser(mp_openid="mp-m", staff_id=world.member.id)
    o_user = WechatUser(mp_openid="mp-o", staff_id=world.other_member.id)
    agent_user = WechatUser(mp_openid="mp-agent", staff_id=world.agent.id)
    db.session.add_all([a, b, m_user, o_user, agent_user])
    db.session.flush()
    b_home = make_household(community=world.community, station=world.station, owner_name="李四")
    issue_bills(world.season, [b_home])
    db.session.add_all([
        HouseholdBinding(wechat_user_id=a.id, household_id=world.household.id, proof="owner_name"),
        HouseholdBinding(wechat_user_id=b.id, household_id=b_home.id, proof="owner_name"),
    ])
    db.session.flush()
    payment = create_payment(a, [world.bill])
    path, content_type, size = store_image(jpeg_with_exif())
    ticket = tickets.create_ticket(
        Actor.of_resident(a), type=TicketType.REPAIR, source=TicketSource.MINI_PROGRAM, description="不热",
        household=world.household, photos=[tickets.PhotoInput(path=path, content_type=content_type, size_bytes=size)])
    db.session.commit()
    assert ticket.assignee_id == world.member.id
    tokens = {name: issue_token(u) for name, u in
              {"a": a, "b": b, "member": m_user, "other_crew": o_user, "agent": agent_user}.items()}
    return {"tokens": tokens, "ticket": ticket, "payment": payment, "photo": ticket.photos[0], "world": world,
            "b_home": b_home}


def _resident_endpoints(t):
    w, ticket, payment = t["world"], t["ticket"], t["payment"]
    hid, bill_id = w.household.id, w.bill.id
    return [
        ("DELETE", f"/api/v1/households/{hid}", None, None),
        ("GET", f"/api/v1/households/{hid}/bills", None, None),
        ("POST", "/api/v1/payments", {"household_id": hid, "bill_ids": [bill_id]}, None),
        ("GET", f"/api/v1/payments/{payment.out_trade_no}", None, None),
        ("GET", f"/api/v1/payments/{payment.out_trade_no}/receipt", None, None),
        ("POST", "/api/v1/repairs", None, {"household_id": str(hid), "category": "leak", "description": "漏水"}),
        ("GET", f"/api/v1/repairs/{ticket.id}", None, None),
        ("POST", f"/api/v1/repairs/{ticket.id}/cancel", {"reason": "不修了"}, None),
        ("POST", f"/api/v1/repairs/{ticket.id}/rate", {"rating": 1}, None),
        ("POST", f"/api/v1/repairs/{ticket.id}/still-cold", {"note": "还冷"}, None),
        ("GET", f"/api/v1/photos/{t['photo'].id}", None, None),
    ]


def _crew_endpoints(t):
    ticket_id = t["ticket"].id
    return [
        ("GET", f"/api/v1/tasks/{ticket_id}", None, None),
        ("POST", f"/api/v1/tasks/{ticket_id}/accept", None, None),
        ("POST", f"/api/v1/tasks/{ticket_id}/notes", None, {"note": "到场"}),
        ("POST", f"/api/v1/tasks/{ticket_id}/reply", None, {"reply": "修好了"}),
        ("POST", f"/api/v1/tasks/{ticket_id}/forward", {"reason": "不是我的", "crew_id": t["world"].crew.id}, None),
        ("POST", f"/api/v1/tasks/{ticket_id}/defect", None, {"description": "阀门老化"}),
    ]


ALL_ENDPOINTS = [
    ("POST", "/api/v1/auth/refresh"), ("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/auth/link"), ("GET", "/api/v1/households"), ("POST", "/api/v1/households/bind"),
    ("DELETE", "/api/v1/households/1"), ("GET", "/api/v1/households/1/bills"), ("POST", "/api/v1/payments"),
    ("GET", "/api/v1/payments"), ("GET", "/api/v1/payments/HP1"), ("GET", "/api/v1/payments/HP1/receipt"),
    ("POST", "/api/v1/repairs"), ("GET", "/api/v1/repairs"), ("GET", "/api/v1/repairs/1"),
    ("POST", "/api/v1/repairs/1/cancel"), ("POST", "/api/v1/repairs/1/rate"), ("POST", "/api/v1/repairs/1/still-cold"),
    ("GET", "/api/v1/photos/1"),
    ("GET", "/api/v1/outages"), ("GET", "/api/v1/announcements"), ("POST", "/api/v1/subscriptions"),
    ("GET", "/api/v1/tasks"), ("GET", "/api/v1/tasks/1"), ("POST", "/api/v1/tasks/1/accept"),
    ("POST", "/api/v1/tasks/1/notes"), ("POST", "/api/v1/tasks/1/reply"), ("POST", "/api/v1/tasks/1/forward"),
    ("POST", "/api/v1/tasks/1/defect"), ("POST", "/api/v1/location"),
]


def _call(client, token, method, path, json=None, form=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if form is not None:
        return client.open(path, method=method, headers=headers, data={**form, "photos": [_jpeg()]},
                           content_type="multipart/form-data")
    return client.open(path, method=method, headers=headers, json=json)


def test_every_endpoint_needs_a_valid_token(client, app):
    ours = ("mobile_auth", "mobile_residents", "mobile_crews")
    documented = {(m.upper(), p) for p, ops in client.get("/api/v1/openapi.json").json["paths"].items()
                  for m, op in ops.items() if isinstance(op, dict) and set(op.get("tags", ())) & set(ours) and p != "/api/v1/auth/login"}
    assert len(documented) == len(ALL_ENDPOINTS)   # this list covers the whole API
    for method, path in ALL_ENDPOINTS:
        for token in (None, "forged.token.value"):
            answer = _call(client, token, method, path, json={})
            assert answer.status_code == 401, (method, path, answer.status_code)
            assert answer.json["error"]["message"]


def test_another_resident_is_refused_every_object_of_mine(client, two_worlds):
    for who in ("b", "member", "other_crew", "agent"):   # staff are residents only of their own homes
        for method, path, json, form in _resident_endpoints(two_worlds):
            if who == "member" and path.startswith("/api/v1/photos/"):
                continue   # the assignee sees the task's photos (checked below)
            answer = _call(client, two_worlds["tokens"][who], method, path, json, form)
            assert answer.status_code in (403, 404), (who, method, path, answer.status_code, answer.json)
    # ...and their lists do not show it.
    b = two_worlds["tokens"]["b"]
    assert [h["id"] for h in _call(client, b, "GET", "/api/v1/households").json["items"]] == [two_worlds["b_home"].id]
    assert _call(client, b, "GET", "/api/v1/repairs").json["total"] == 0
    assert _call(client, b, "GET", "/api/v1/payments").json["total"] == 0


def test_crew_endpoints_refuse_residents_other_crews_and_agents(client, two_worlds, db):
    for who, expected in (("a", 403), ("b", 403), ("agent", 403), ("other_crew", 404)):
        for method, path, json, form in _crew_endpoints(two_worlds):
            answer = _call(client, two_worlds["tokens"][who], method, path, json, form)
            assert answer.status_code == expected, (who, method, path, answer.status_code, answer.json)
        tasks = _call(client, two_worlds["tokens"][who], "GET", "/api/v1/tasks")
        assert tasks.status_code == expected if expected == 403 else tasks.json["total"] == 0
    # The assignee sees it, and its photo; nothing was changed by the refused calls.
    member = two_worlds["tokens"]["member"]
    assert _call(client, member, "GET", "/api/v1/tasks").json["total"] == 1
    assert _call(client, member, "GET", f"/api/v1/photos/{two_worlds['photo'].id}").status_code == 200
    detail = _call(client, member, "GET", f"/api/v1/tasks/{two_worlds['ticket'].id}").json
    assert detail["state"] == "assigned" and [e["action"] for e in detail["timeline"]] == ["created", "assigned"]
    assert db.session.scalar(select(Payment.state)) == "created"


def test_a_deactivated_crew_member_loses_the_inbox_at_once(client, two_worlds, db):
    two_worlds["world"].member.active = False
    db.session.commit()
    assert _call(client, two_worlds["tokens"]["member"], "GET", "/api/v1/tasks").status_code == 403


def test_forwarding_to_oneself_is_refused(client, two_worlds):
    member = two_worlds["tokens"]["member"]
    answer = _call(client, member, "POST", f"/api/v1/tasks/{two_worlds['ticket'].id}/forward",
                   {"reason": "转给自己", "staff_id": two_worlds["world"].member.id})
    assert answer.status_code == 400 and "不能转办给自己" in answer.json["error"]["message"]


def test_too_many_wrong_binding_guesses_are_refused_for_a_while(client, two_worlds):
    b = two_worlds["tokens"]["b"]
    account = two_worlds["world"].household.account_no
    codes = [_call(client, b, "POST", "/api/v1/households/bind",
                   {"account_no": account, "owner_name": "猜一个"}).status_code for _ in range(6)]
    assert codes == [400] * 5 + [429]
    right = _call(client, b, "POST", "/api/v1/households/bind", {"account_no": account, "owner_name": "张伟"})
    assert right.status_code == 429


def test_uploads_are_checked_by_content_and_count(client, two_worlds):
    a = two_worlds["tokens"]["a"]
    hid = str(two_worlds["world"].household.id)
    fake = _call(client, a, "POST", "/api/v1/repairs", None, None)
    assert fake.status_code == 400
    headers = {"Authorization": f"Bearer {a}"}
    not_image = client.post("/api/v1/repairs", headers=headers, content_type="multipart/form-data", data={
        "household_id": hid, "category": "leak", "description": "漏水",
        "photos": [(io.BytesIO(b"GIF89a not really"), "x.jpg", "image/jpeg")]})
    assert not_image.status_code == 400 and "photos" in not_image.json["error"]["fields"]
    ten = client.post("/api/v1/repairs", headers=headers, content_type="multipart/form-data", data={
        "household_id": hid, "category": "leak", "description": "漏水", "photos": [_jpeg() for _ in range(10)]})
    assert ten.status_code == 400
