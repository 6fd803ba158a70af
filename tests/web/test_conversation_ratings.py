"""Ratings of live-chat conversations (会话) follow the rules of every rating (issue 15): one
parser and one 72-hour window for tickets and conversations, a rating of 2 or less opens a
回访 task recorded on the console, and the ratings count in the satisfaction figures and the
reports, with the chat's waiting and first-response times."""
from datetime import datetime, timedelta, timezone
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from app import clock as app_clock
from app.models import Conversation, FollowUpTask, Role, Ticket, TicketSource, TicketType
from app.services import chat, metrics, ratings, reports, tickets
from app.services.actors import Actor
from tests.wechat.residents import bound_resident

IN_HOURS = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)      # 10:00 Beijing
BEIJING = ZoneInfo("Asia/Shanghai")


@pytest.fixture()
def at():
    yield app_clock.travel_to
    app_clock.back_to_real_time()


@pytest.mark.parametrize("words, score", [
    ("5", 5), ("5分", 5), ("5。", 5), ("满意", 4), ("非常满意", 5), ("很满意", 5), ("一般", 3), ("不满意", 2),
    ("非常不满意", 1), ("五星好评", 5), ("打4分", 4), ("三星", 3), ("差评", 1), ("不太满意", 2),
    ("服务很好 满意", 4), ("暖气", None), ("", None), ("12345", None),
])
def test_one_parser_reads_residents_rating_words(words, score):
    assert ratings.score_of(words) == score


def _answered_conversation(db, wechat, openid, agent, *, wait=timedelta(seconds=40), first=timedelta(seconds=90)):
    """The resident asks for a person; the agent takes it after ``wait``, answers after
    ``first`` (both from the opening) and closes it."""
    wechat.say(openid, "人工")
    db.session.expire_all()
    conv = db.session.scalar(select(Conversation).order_by(Conversation.id.desc()))
    chat.claim(conv, agent, now=conv.opened_at + wait)
    chat.reply(conv, agent, "您好，请讲", now=conv.opened_at + first)
    chat.close(conv, agent, now=conv.opened_at + first + timedelta(seconds=30))
    db.session.commit()
    return conv


def test_a_conversation_rated_2_or_less_opens_a_follow_up_recorded_on_the_console(
        db, wechat, console, staff, make_household, at):
    at(IN_HOURS)
    agent = staff(Role.AGENT, name="客服小王")
    openid, user = bound_resident(db, wechat, make_household())
    conv = _answered_conversation(db, wechat, openid, agent)

    answer = wechat.say(openid, "不满意，等了很久才回复")
    assert "本次人工会话评为2分" in answer and "回访" in answer
    db.session.expire_all()
    conv = db.session.get(Conversation, conv.id)
    task = db.session.scalar(select(FollowUpTask))
    assert conv.rating == 2 and (task.conversation_id, task.ticket_id, task.rating) == (conv.id, None, 2)
    assert task.comment == "不满意，等了很久才回复"
    assert "没有可评价" in wechat.say(openid, "1")               # rated once; nothing changes
    assert db.session.scalar(select(func.count()).select_from(FollowUpTask)) == 1

    console.login(agent.username)
    listing = console.get("/console/follow-ups").get_data(as_text=True)
    assert f"人工会话 #{conv.id}" in listing and "等了很久才回复" in listing and "客服小王" in listing
    assert console.get(f"/console/chats?id={conv.id}").status_code == 200   # the row's link opens
    refused = console.post(f"/console/follow-ups/{task.id}/visit", {"result": "  "})
    assert refused.status_code == 400 and "请填写回访结果" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(FollowUpTask, task.id).state == "open"
    assert console.post(f"/console/follow-ups/{task.id}/visit", {"result": "已致电道歉，说明高峰排队"}).status_code == 302
    db.session.expire_all()
    task = db.session.get(FollowUpTask, task.id)
    assert (task.state, task.result, task.done_by_id) == ("done", "已致电道歉，说明高峰排队", agent.id)
    assert f"人工会话 #{conv.id}" not in console.get("/console/follow-ups").get_data(as_text=True)
    again = console.post(f"/console/follow-ups/{task.id}/visit", {"result": "再记一次"})
    assert again.status_code == 409 and db.session.get(FollowUpTask, task.id).result == "已致电道歉，说明高峰排队"


def test_a_good_conversation_rating_opens_no_follow_up(db, wechat, staff, make_household, at):
    at(IN_HOURS)
    openid, _ = bound_resident(db, wechat, make_household())
    conv = _answered_conversation(db, wechat, openid, staff(Role.AGENT))
    assert "评为5分" in wechat.say(openid, "五星好评")
    db.session.expire_all()
    assert db.session.get(Conversation, conv.id).rating == 5
    assert db.session.scalar(select(func.count()).select_from(FollowUpTask)) == 0


def test_the_rating_goes_to_whichever_closed_last_ticket_or_conversation(
        db, wechat, staff, make_household, at):
    at(IN_HOURS)
    agent = staff(Role.AGENT)
    home = make_household()
    openid, user = bound_resident(db, wechat, home)
    conv = _answered_conversation(db, wechat, openid, agent)
    t = tickets.create_ticket(Actor.of_resident(user), type=TicketType.INQUIRY, source=TicketSource.OFFICIAL_ACCOUNT,
                              description="咨询热费", household=home)
    tickets.close_ticket(t, Actor.of_staff(agent), "已答复")
    t.closed_at = conv.closed_at + timedelta(minutes=5)
    db.session.commit()

    assert t.number in wechat.say(openid, "4")                    # the ticket closed later
    assert "本次人工会话评为3分" in wechat.say(openid, "一般")     # then the conversation
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).rating == 4 and db.session.get(Conversation, conv.id).rating == 3


def test_a_conversation_is_rated_within_the_same_window_as_tickets(db, wechat, staff, make_household, at):
    at(IN_HOURS)
    openid, user = bound_resident(db, wechat, make_household())
    conv = _answered_conversation(db, wechat, openid, staff(Role.AGENT))
    assert ratings.conversation_awaiting_rating(user, now=conv.closed_at + ratings.CHAT_WINDOW - timedelta(minutes=1))
    at(conv.closed_at + ratings.CHAT_WINDOW + timedelta(minutes=1))
    assert "没有可评价" in wechat.say(openid, "5")
    db.session.expire_all()
    assert db.session.get(Conversation, conv.id).rating is None
    with pytest.raises(Exception) as refused:
        ratings.rate_conversation(db.session.get(Conversation, conv.id), 5, by=user)
    assert "72小时" in str(refused.value.message)


def test_only_the_conversations_resident_rates_it(db, wechat, staff, make_household, make_wechat_user, at):
    at(IN_HOURS)
    openid, _ = bound_resident(db, wechat, make_household())
    conv = _answered_conversation(db, wechat, openid, staff(Role.AGENT))
    with pytest.raises(Exception) as refused:
        ratings.rate_conversation(conv, 5, by=make_wechat_user())
    assert refused.value.code == "conversation_forbidden" and conv.rating is None


def test_conversation_ratings_and_chat_times_count_in_the_reports_and_the_dashboard(
        db, wechat, staff, make_household, at):
    at(IN_HOURS)
    one, two = staff(Role.AGENT, name="客服甲"), staff(Role.AGENT, name="客服乙")
    first, _ = bound_resident(db, wechat, make_household(), nickname="甲")
    second, _ = bound_resident(db, wechat, make_household(), nickname="乙")
    _answered_conversation(db, wechat, first, one, wait=timedelta(seconds=60), first=timedelta(seconds=120))
    _answered_conversation(db, wechat, second, two, wait=timedelta(seconds=180), first=timedelta(seconds=300))
    wechat.say(first, "5")
    wechat.say(second, "2")
    db.session.expire_all()

    today = IN_HOURS.astimezone(BEIJING).date()
    params = reports.ReportParams(today, today)
    report = reports.full_report(params)
    sat = report["tickets"]["satisfaction"]
    assert (sat["rated"], sat["chat_rated"], sat["average"], sat["satisfied_rate"]) == (2, 2, 3.5, 0.5)
    assert {d["stars"]: d["count"] for d in sat["distribution"]}[2] == 1
    c = report["chat"]
    assert (c["opened"], c["answered"], c["avg_wait_seconds"], c["avg_first_response_seconds"]) == (2, 2, 120.0, 210.0)
    assert [(a["name"], a["conversations"], a["avg_wait_seconds"], a["rating"]) for a in c["per_agent"]] == [
        ("客服乙", 1, 180.0, 2.0), ("客服甲", 1, 60.0, 5.0)]
    agents = {a["name"]: a for a in report["agents"]}
    assert (agents["客服甲"]["all_rated"], agents["客服甲"]["all_rating"]) == (1, 5.0)
    assert agents["客服乙"]["all_satisfied_rate"] == 0.0

    dash = metrics._satisfaction(IN_HOURS - timedelta(days=1))
    assert (dash["chat_ratings"], dash["count"], dash["average"]) == (2, 2, 3.5)

    book = load_workbook(BytesIO(reports.report_workbook(report)))
    sheet = book["在线会话"]
    cells = {sheet.cell(row=r, column=1).value: sheet.cell(row=r, column=2).value for r in range(1, 9)}
    assert (cells["会话数"], cells["平均等待（秒）"], cells["平均首次响应（秒）"]) == (2, 120.0, 210.0)
    rows = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=10, max_row=12)]
    assert rows[0][:4] == ["客服", "会话数", "平均等待（秒）", "平均首次响应（秒）"]
    assert rows[1][:3] == ["客服乙", 1, 180.0] and rows[2][:3] == ["客服甲", 1, 60.0]
    summary = {r[0].value: r[1].value for r in book["概要"].iter_rows()}
    assert summary["其中人工会话评价"] == 2 and summary["在线会话数"] == 2


def test_the_reports_page_shows_the_chat_figures(db, wechat, console, staff, make_household, at):
    at(IN_HOURS)
    agent = staff(Role.AGENT, name="客服丙")
    openid, _ = bound_resident(db, wechat, make_household())
    _answered_conversation(db, wechat, openid, agent, wait=timedelta(seconds=75), first=timedelta(seconds=200))
    leader = staff(Role.LEADER)
    console.login(leader.username)
    day = IN_HOURS.astimezone(BEIJING).date().isoformat()
    page = console.get(f"/console/reports?date_from={day}&date_to={day}").get_data(as_text=True)
    assert 'id="report-chat"' in page
    assert '<div class="value" id="chat-wait">1分15秒</div>' in page
    assert '<div class="value" id="chat-first-response">3分20秒</div>' in page
    assert "<td>客服丙</td><td>1</td><td>1分15秒</td>" in page
