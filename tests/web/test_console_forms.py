"""Console forms (issue 17): refusals inside the layout with field messages and the input
kept, the right flash for a first assignment, confirmation with the recipient count before a
mass send, honest announcement results with 重试失败, restored outages keep their count,
dead letters and admin forms in Chinese."""
from __future__ import annotations

import json

from sqlalchemy import select

from app.models import (
    Announcement, AnnouncementStatus, BridgeDeadLetter, Delivery, DeliveryStatus, EvidenceRule,
    Outage, OutageStatus, Role, SlaPolicy, Ticket, TicketState, utcnow,
)
from app.services import outage_linking, outages
from app.services.actors import Actor
from app.services.tickets import accept_ticket, create_ticket
from tests.factories import bind_wechat_user


def _repair(db, make_area, make_household, make_crew, make_staff):
    _, community, station = make_area(community="幸福里")
    crew = make_crew(name="和平维修一班", stations=[station])
    other = make_crew(name="和平维修二班")
    member = make_staff(role=Role.CREW_MEMBER, crew=crew, name="张志强")
    make_staff(role=Role.CREW_MEMBER, crew=other, name="李建")
    household = make_household(community=community)
    db.session.commit()
    return crew, other, member, household


def test_a_forward_without_reason_says_so_once_next_to_the_field_and_keeps_the_choice(
        console, staff, db, make_area, make_household, make_crew, make_staff):
    crew, other, member, household = _repair(db, make_area, make_household, make_crew, make_staff)
    ticket = create_ticket(Actor.system(), type="repair", source="phone", description="暖气不热", household=household)
    accept_ticket(ticket, Actor.of_staff(member))
    db.session.commit()
    console.login(staff(Role.AGENT).username)
    res = console.post(f"/console/tickets/{ticket.id}/reassign", {"crew_id": str(other.id), "note": " "})
    page = res.get_data(as_text=True)
    assert res.status_code == 400 and 'class="topbar"' in page and 'id="reassign-form"' in page
    assert page.count("请填写转办原因") == 1 and 'data-field="reason"' in page
    assert f'<option value="{other.id}" selected>' in page     # the crew chosen is still chosen
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).crew_id == crew.id   # nothing changed


def test_the_flash_says_dispatched_for_a_first_assignment_and_reassigned_after(
        console, staff, db, make_area, make_household, make_crew, make_staff):
    crew, other, member, household = _repair(db, make_area, make_household, make_crew, make_staff)
    ticket = create_ticket(Actor.system(), type="complaint", source="phone", description="维修人员态度差",
                           household=household)
    db.session.commit()
    assert ticket.crew_id is None
    console.login(staff(Role.AGENT).username)
    first = console.post(f"/console/tickets/{ticket.id}/reassign", {"crew_id": str(crew.id)}, follow_redirects=True)
    text = first.get_data(as_text=True)
    assert "已派单：和平维修一班" in text and "已改派" not in text
    again = console.post(f"/console/tickets/{ticket.id}/reassign", {"crew_id": str(other.id)}, follow_redirects=True)
    assert "已改派：和平维修二班" in again.get_data(as_text=True)


def test_knowledge_base_refusal_names_each_missing_field_and_keeps_what_was_typed(console, staff):
    console.login(staff(Role.AGENT).username)
    res = console.post("/console/faq", {"question": "", "answer": "", "category": "", "keywords": "暖气 漏水"})
    page = res.get_data(as_text=True)
    assert res.status_code == 400 and 'class="topbar"' in page
    for field, message in (("question", "请填写问题"), ("answer", "请填写答案"), ("category", "请填写分类")):
        assert f'data-field="{field}"' in page and page.count(message) == 1
    assert "必填" not in page and 'value="暖气 漏水"' in page


def test_an_outage_refusal_keeps_the_form_and_names_the_fields(console, staff, make_area, db):
    _, community, _ = make_area()
    db.session.commit()
    console.login(staff(Role.AGENT).username)
    areas = json.dumps([{"community_id": community.id}])
    res = console.post("/console/outages", {"title": "", "kind": "unplanned", "reason": "", "areas": areas,
                                            "expected_end_at": "2030-01-01T10:00"})
    page = res.get_data(as_text=True)
    assert res.status_code == 400 and "请填写标题" in page and "请填写原因" in page
    assert 'value="2030-01-01T10:00"' in page and f'"community_id": {community.id}' in page
    assert db.session.scalar(select(Outage)) is None


def test_an_announcement_to_everyone_goes_out_only_after_the_count_is_confirmed(
        console, staff, db, make_household, make_wechat_user):
    for i in range(3):
        make_wechat_user(household=make_household())
    db.session.commit()
    console.login(staff(Role.AGENT).username)
    form = {"title": "停水通知", "body": "明日停水", "audience": "all", "send": "now", "areas": "[]"}
    asked = console.post("/console/announcements", form)
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and 'id="confirm-send"' in page and "立即发送给 <span id=\"confirm-count\">3</span> 人" in page
    assert 'value="停水通知"' in page and db.session.scalar(select(Announcement)) is None
    stale = console.post("/console/announcements", {**form, "confirmed": "2"})   # the count changed meanwhile
    assert stale.status_code == 200 and db.session.scalar(select(Announcement)) is None
    sent = console.post("/console/announcements", {**form, "confirmed": ["", "3"]})
    assert sent.status_code == 302
    ann = db.session.scalar(select(Announcement))
    assert ann.status == AnnouncementStatus.SENDING
    draft = console.post("/console/announcements", {**form, "title": "草稿", "send": "draft"})
    assert draft.status_code == 302   # a draft sends nothing: no question


def test_announcement_results_are_honest_and_retry_sends_to_the_failed_once(
        console, staff, db, wechat, worker, make_household, make_wechat_user):
    reached = []
    for _ in range(2):
        person, _ = bind_wechat_user(db, wechat, household=make_household(), mini_program=False)
        reached.append(person["openid"])
    stranger = "oSTRANGER" + "x" * 19       # not a user of this account at WeChat: 40003
    user = make_wechat_user(oa_openid=stranger, household=make_household(owner_name="赵敏"))
    db.session.commit()
    console.login(staff(Role.AGENT).username)
    form = {"title": "检修通知", "body": "周六检修", "audience": "all", "send": "now", "areas": "[]", "confirmed": "3"}
    res = console.post("/console/announcements", form)
    assert res.status_code == 302
    worker()
    ann = db.session.scalar(select(Announcement))
    page = console.get(f"/console/announcements/{ann.id}").get_data(as_text=True)
    assert "发送结束：成功2人，失败1人" in page and "全部发送成功" not in page
    assert 'result-summary bad' in page and "tone-bad" in page           # not green
    assert "openid 无效" in page and "40003" in page and "配置错误" not in page
    assert 'class="failed-row"' in page and "赵*" in page and 'id="retry-failed"' in page
    progress = console.get(f"/console/announcements/{ann.id}/progress.json").get_json()
    assert (progress["tone"], progress["sent"], progress["failed"]) == ("bad", 2, 1)

    wechat.create_user(oa_openid=stranger)   # now a follower: the retry can reach them
    assert console.post(f"/console/announcements/{ann.id}/retry-failed").status_code == 302
    again = console.post(f"/console/announcements/{ann.id}/retry-failed", follow_redirects=True)
    assert "没有需要重试的失败接收人" in again.get_data(as_text=True)   # a second click: nothing more
    worker()
    assert [len(wechat.inbox(o)) for o in reached] == [1, 1]        # the others got it once
    assert len(wechat.inbox(stranger)) == 1
    db.session.expire_all()
    row = db.session.scalar(select(Delivery).where(Delivery.wechat_user_id == user.id))
    assert (row.status, row.resends) == (DeliveryStatus.SENT, 1)
    page = console.get(f"/console/announcements/{ann.id}").get_data(as_text=True)
    assert "全部发送成功（3人）" in page and "result-summary ok" in page


def test_a_restored_outage_keeps_its_affected_households(console, staff, db, make_area, make_household):
    _, community, _ = make_area()
    for _ in range(4):
        make_household(community=community)
    outage = outages.create_outage(title="幸福里抢修", kind="unplanned", reason="管道爆裂", starts_at=utcnow(),
                                   expected_end_at=None, areas=[{"community_id": community.id}])
    db.session.commit()
    outage_linking.restore_outage(outage.id)
    db.session.commit()
    console.login(staff(Role.AGENT).username)
    page = console.get("/console/outages").get_data(as_text=True)
    row = page[page.index("幸福里抢修"):]
    row = row[:row.index("</tr>")]
    assert OutageStatus.LABELS["restored"] in row and "<td>4</td>" in row
    assert '<span id="affected-households">4</span>' in console.get(f"/console/outages/{outage.id}").get_data(as_text=True)


def test_dead_letters_are_shown_in_chinese(console, staff, db):
    db.session.add(BridgeDeadLetter(endpoint="tickets", raw_body="{oops", received_at=utcnow(),
                                    reason="400 invalid_json: 请求内容不是有效的JSON (Expecting value: line 1)",
                                    replay_result="failed: 400 invalid_json: 请求内容不是有效的JSON"))
    db.session.add(BridgeDeadLetter(endpoint="calls", raw_body="{}", received_at=utcnow(), replayed_at=utcnow(),
                                    reason="422 invalid_input: 提交的内容有误，请检查后重试", replay_result="ok: 201 created"))
    db.session.commit()
    console.login(staff(Role.AGENT).username)
    page = console.get("/console/dead-letters?all=1").get_data(as_text=True)
    visible = page.split("<details>")[0] + "".join(part.split("</details>", 1)[-1] for part in page.split("<details>")[1:])
    assert "请求内容不是有效的JSON" in visible and "重放失败" in visible and "重放成功：已新建工单" in visible
    assert ">工单<" in visible and ">来电<" in visible
    for english in ("invalid_json", "failed:", "created", ">tickets<"):
        assert english not in visible, english


def test_admin_forms_refuse_bad_numbers_in_chinese_and_keep_them(console, staff, db):
    console.login(staff(Role.ADMIN).username)
    row = db.session.scalar(select(SlaPolicy).order_by(SlaPolicy.id))
    before = (row.respond_minutes, row.finish_minutes)
    res = console.post(f"/console/admin/sla/{row.id}", {"respond_minutes": "120", "finish_minutes": "60"})
    page = res.get_data(as_text=True)
    assert res.status_code == 400 and "完成时限不能短于响应时限" in page and 'value="60"' in page
    db.session.expire_all()
    assert (db.session.get(SlaPolicy, row.id).respond_minutes, db.session.get(SlaPolicy, row.id).finish_minutes) == before
    assert console.post(f"/console/admin/sla/{row.id}", {"respond_minutes": "30", "finish_minutes": "600"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(SlaPolicy, row.id).finish_minutes == 600
    bad = console.post("/console/admin/evidence", {"category": "noise", "min_photos": "20"})
    assert bad.status_code == 400 and "照片张数须为1到9的整数" in bad.get_data(as_text=True)
    assert console.post("/console/admin/evidence", {"category": "noise", "min_photos": "2"}).status_code == 302
    assert db.session.scalar(select(EvidenceRule.min_photos).where(EvidenceRule.category == "noise")) == 2
    refused = console.post("/console/admin/settings", {"rate": "abc"})
    assert refused.status_code == 400 and "请填写1到100000之间的整数" in refused.get_data(as_text=True)
    assert console.post("/console/admin/settings", {"rate": "1200"}).status_code == 302
    assert 'value="1200"' in console.get("/console/admin/settings").get_data(as_text=True)
    console.post("/console/admin/settings", {"reset": "1"})
