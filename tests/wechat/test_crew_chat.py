"""Crew members handling their tasks by chatting with the official account, through the sandbox."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine

from app.reference.knowledge_base import ENTRIES as FAQ
from app.models import FaqEntry, Role, Ticket, TicketEvent, TicketSource, TicketState, TicketType, utcnow
from app.services import binding, tickets
from app.services.actors import Actor
from tests.factories import bind_wechat_user
from wechat import crew_chat, qr

# The demo's FAQ, as tests/wechat/test_conversation.py seeds it (the FAQ index is cached per
# process by version, so every test seeds the same entries).
FAQ_ANSWER = next(a for _, q, a, _ in FAQ if q == "暖气不热怎么办？")


@pytest.fixture()
def faq(db):
    """The knowledge base: shipped by migration 0015 (reference rows, the same in every test)."""


@pytest.fixture()
def crew_member(db, wechat, make_household, make_crew, make_staff):
    """Makes a crew member whose WeChat is bound, with ``count`` tasks routed to them."""

    def make(count=1, name="李师傅", category="no_heat"):
        home = make_household()
        crew = make_crew(stations=[home.station])
        member = make_staff(role=Role.CREW_MEMBER, crew=crew, name=name)
        person, _ = bind_wechat_user(db, wechat, staff=member, mini_program=False)
        made = [tickets.create_ticket(Actor.system(), type=TicketType.REPAIR, source=TicketSource.PHONE,
                                      description=f"暖气不热{i}", household=home, category=category)
                for i in range(count)]
        db.session.commit()
        assert all(t.assignee_id == member.id for t in made)
        return person["openid"], member, made

    return make


def _events(db, ticket):
    db.session.expire_all()
    return [(e.action, e.note) for e in db.session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id))]


def _state(db, ticket):
    db.session.expire_all()
    return db.session.get(Ticket, ticket.id).state


def test_task_command_lists_my_open_tasks_soonest_deadline_first_with_links(db, wechat, app, crew_member):
    openid, member, made = crew_member(count=3)
    _, _, (others,) = crew_member(name="王师傅")
    now = utcnow()
    for ticket, hours in zip(made, (30, 5, 12)):  # created first, due last
        ticket.finish_by = now + timedelta(hours=hours)
    db.session.commit()

    reply = wechat.say(openid, "任务")
    assert reply == wechat.say(openid, "我的任务")
    by_deadline = sorted(made, key=lambda t: t.finish_by)
    positions = [reply.index(f"[{t.id}] {t.number}") for t in by_deadline]
    assert positions == sorted(positions)
    assert others.number not in reply
    for ticket in made:
        assert f'<a href="{app.config["PUBLIC_BASE_URL"]}/mp/task?id={ticket.id}&no={ticket.number}">' in reply
    first = by_deadline[0]
    assert f"时限 {crew_chat.outages.local_time(first.finish_by)}" in reply
    assert "不热/停暖" in reply and "已派单" in reply and first.household.address[:10] in reply
    assert "任务编号" in reply


def test_a_crew_lead_sees_their_crews_tasks_in_chat_as_in_the_api(db, wechat, crew_member, make_staff):
    _, member, made = crew_member(count=2)
    _, _, (elsewhere,) = crew_member(name="王师傅")   # another crew's task
    lead = make_staff(role=Role.CREW_LEAD, crew=member.crew, name="赵班长")
    person, _ = bind_wechat_user(db, wechat, staff=lead, mini_program=False)
    db.session.commit()
    assert all(t.assignee_id == member.id for t in made)   # none assigned to the lead in person

    reply = wechat.say(person["openid"], "任务")
    for ticket in made:
        assert f"[{ticket.id}] {ticket.number}" in reply
    assert elsewhere.number not in reply
    assert f"您有{len(made)}条未完成任务" in reply


def test_task_command_without_tasks_says_so(db, wechat, crew_member):
    openid, member, (task,) = crew_member()
    tickets.accept_ticket(task, Actor.of_staff(member))
    tickets.reply_ticket(task, Actor.of_staff(member), "已修好")
    db.session.commit()
    assert wechat.say(openid, "任务") == "您当前没有未完成的任务。"


def test_a_long_task_list_fits_one_reply_and_points_to_the_mini_program(db, wechat, crew_member):
    openid, _, made = crew_member(count=15)
    reply = wechat.say(openid, "任务")
    assert len(reply.encode()) <= 2048
    listed = re.findall(r"^\[(\d+)\] ", reply, re.M)
    more = int(re.search(r"还有(\d+)条，请在小程序任务列表查看", reply).group(1))
    assert 3 <= len(listed) < 15 and len(listed) + more == 15


def test_accept_note_and_done_move_the_task_through_the_ticket_service(db, wechat, crew_member):
    openid, member, (task,) = crew_member()

    assert "已接单" in wechat.say(openid, f"接单 {task.id}")
    assert _state(db, task) == TicketState.ACCEPTED

    assert wechat.say(openid, f"回复 {task.id} 已到现场，正在排查") == f"已记录到工单 {task.number} 的处理记录。"
    assert _state(db, task) == TicketState.IN_PROGRESS

    assert task.number in wechat.say(openid, f"完成 {task.id} 已更换阀门，暖气恢复")
    db.session.expire_all()
    done = db.session.get(Ticket, task.id)
    assert done.state == TicketState.REPLIED and done.reply == "已更换阀门，暖气恢复"
    assert _events(db, task)[-3:] == [("accepted", None), ("progress_note", "已到现场，正在排查"),
                                      ("replied", "已更换阀门，暖气恢复")]
    actors = {e.actor_staff_id for e in db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == task.id, TicketEvent.action.in_(("accepted", "progress_note", "replied"))))}
    assert actors == {member.id}
    assert wechat.say(openid, "任务") == "您当前没有未完成的任务。"


def test_done_without_a_note_submits_a_standard_result(db, wechat, crew_member):
    openid, _, (task,) = crew_member()
    wechat.say(openid, f"接单 {task.id}")
    wechat.say(openid, f"完成 {task.id}")
    db.session.expire_all()
    assert db.session.get(Ticket, task.id).reply == crew_chat.DONE_TEXT


def test_bad_task_numbers_and_illegal_steps_are_refused_and_change_nothing(db, wechat, crew_member):
    openid, _, (mine,) = crew_member()
    _, _, (theirs,) = crew_member(name="王师傅")
    before_mine, before_theirs = _events(db, mine), _events(db, theirs)

    # Another crew's task is answered like a number that is no task (as the API's 404): the
    # answer does not say whether it exists, and points to the person's own task list.
    unknown = wechat.say(openid, "接单 987654")
    assert unknown == "您的任务中没有编号为 987654 的任务。回复【任务】查看您的任务编号。"
    assert wechat.say(openid, f"接单 {theirs.id}") == unknown.replace("987654", str(theirs.id))
    assert wechat.say(openid, f"完成 {theirs.id} 好了") == unknown.replace("987654", str(theirs.id))
    assert wechat.say(openid, f"回复 {theirs.id} 到了") == unknown.replace("987654", str(theirs.id))
    refused = wechat.say(openid, f"完成 {mine.id} 修好了")
    assert "不能回复" in refused and f"接单 {mine.id}" in refused
    assert "请在编号后写上内容" in wechat.say(openid, f"回复 {mine.id}")

    assert _events(db, mine) == before_mine and _events(db, theirs) == before_theirs
    assert _state(db, mine) == TicketState.ASSIGNED and _state(db, theirs) == TicketState.ASSIGNED


def test_done_respects_the_photo_evidence_rule(db, wechat, crew_member):
    openid, _, (leak,) = crew_member(category="leak")
    wechat.say(openid, f"接单 {leak.id}")
    assert "现场照片" in wechat.say(openid, f"完成 {leak.id} 已修好")
    assert _state(db, leak) == TicketState.ACCEPTED


def test_plain_text_becomes_a_note_on_the_only_task(db, wechat, crew_member):
    openid, _, (task,) = crew_member()
    wechat.say(openid, f"接单 {task.id}")
    assert wechat.say(openid, "阀门锈死，明天带配件来换") == f"已记录到工单 {task.number} 的处理记录。"
    assert _events(db, task)[-1] == ("progress_note", "阀门锈死，明天带配件来换")


def test_plain_text_on_a_task_not_yet_accepted_asks_to_accept_first(db, wechat, crew_member):
    openid, _, (task,) = crew_member()
    before = _events(db, task)
    assert f"接单 {task.id}" in wechat.say(openid, "路上堵车，晚点到")
    assert _events(db, task) == before


def test_plain_text_with_two_tasks_asks_which_then_records_the_answer(db, wechat, crew_member):
    openid, _, made = crew_member(count=2)
    for ticket in made:
        wechat.say(openid, f"接单 {ticket.id}")
    question = wechat.say(openid, "已关闭总阀，等待泄压")
    assert all(f"[{t.id}]" in question for t in made) and "请回复任务编号" in question

    assert "请回复上面列出的任务编号" in wechat.say(openid, "987654")
    second = made[1]
    assert wechat.say(openid, str(second.id)) == f"已记录到工单 {second.number} 的处理记录。"
    assert _events(db, second)[-1] == ("progress_note", "已关闭总阀，等待泄压")
    assert _events(db, made[0])[-1][0] == "accepted"


def test_crew_with_no_task_gets_the_commands_not_the_faq(db, wechat, crew_member, faq):
    openid, member, (task,) = crew_member()
    tickets.accept_ticket(task, Actor.of_staff(member))
    tickets.reply_ticket(task, Actor.of_staff(member), "已修好")
    db.session.commit()
    reply = wechat.say(openid, "暖气不热怎么办")
    assert reply != FAQ_ANSWER and "没有未完成的任务" in reply and "接单 编号" in reply


def test_crew_plain_text_never_gets_the_faq_answer_a_resident_gets(db, wechat, redis, crew_member, faq):
    resident = wechat.create_user()["openid"]
    assert wechat.say(resident, "暖气不热怎么办") == FAQ_ANSWER
    openid, _, (task,) = crew_member()
    wechat.say(openid, f"接单 {task.id}")

    assert wechat.say(openid, "暖气不热怎么办") == f"已记录到工单 {task.number} 的处理记录。"
    redis.delete(crew_chat.ROSTER_KEY)  # Redis lost the roster: the full path decides
    assert wechat.say(openid, "暖气不热怎么办") == f"已记录到工单 {task.number} 的处理记录。"
    assert wechat.say(resident, "暖气不热怎么办") == FAQ_ANSWER
    assert [n for a, n in _events(db, task) if a == "progress_note"] == ["暖气不热怎么办"] * 2


def test_a_crew_member_bound_by_qr_is_off_the_faq_path_at_once(db, wechat, make_staff, make_crew, faq):
    resident = wechat.create_user()["openid"]
    assert wechat.say(resident, "暖气不热怎么办") == FAQ_ANSWER  # the roster is loaded now
    staff = make_staff(role=Role.CREW_MEMBER, crew=make_crew(), name="赵师傅")
    code = binding.issue_staff_bind_code(staff)
    db.session.commit()
    person = wechat.create_user()["openid"]
    wechat.send(person, type="event", event="SCAN", scene=qr.staff_scene(code.code))
    reply = wechat.say(person, "暖气不热怎么办")
    assert reply != FAQ_ANSWER and "接单 编号" in reply


def test_resident_faq_answers_read_nothing_about_staff(db, wechat, redis, faq, crew_member):
    crew_member()
    resident = wechat.create_user()["openid"]
    wechat.say(resident, "暖气不热怎么办")  # loads the roster (and the FAQ index)
    assert redis.sismember(crew_chat.ROSTER_KEY, crew_chat.LOADED)
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement.lower())

    # Every engine: on PostgreSQL the FAQ path writes its row through an engine of its own.
    event.listen(Engine, "before_cursor_execute", record)
    try:
        assert wechat.say(resident, "暖气不热怎么办") == FAQ_ANSWER
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    # The fast path: the dedupe row and nothing else (no user row, no staff look-up).
    assert len(statements) == 1 and statements[0].startswith("insert into inbound_message")


def test_a_deactivated_crew_member_is_a_resident_again(db, wechat, crew_member, faq):
    openid, member, (task,) = crew_member()
    assert f"[{task.id}]" in wechat.say(openid, "任务")
    member.active = False
    db.session.commit()
    assert f"[{task.id}]" not in wechat.say(openid, "任务")
    assert wechat.say(openid, "暖气不热怎么办") == FAQ_ANSWER
    assert "接单" not in wechat.say(openid, f"接单 {task.id}")
    assert _state(db, task) == TicketState.ASSIGNED


def test_a_stale_roster_costs_a_slower_path_never_crew_rights(db, wechat, redis, crew_member, faq):
    openid, member, (task,) = crew_member()
    wechat.say(openid, "任务")
    assert redis.sismember(crew_chat.ROSTER_KEY, openid)
    # Deactivated around the ORM: nothing dropped the roster, which still lists them.
    db.session.execute(text("UPDATE staff SET active = :no WHERE id = :id"), {"no": False, "id": member.id})
    db.session.commit()
    assert redis.sismember(crew_chat.ROSTER_KEY, openid)
    assert wechat.say(openid, "暖气不热怎么办") == FAQ_ANSWER
    assert not redis.sismember(crew_chat.ROSTER_KEY, openid)


def test_help_shows_the_crew_commands_to_crews_only(db, wechat, crew_member):
    openid, _, _ = crew_member()
    assert "接单 编号" in wechat.say(openid, "帮助")
    resident = wechat.create_user()["openid"]
    assert "接单" not in wechat.say(resident, "帮助")
