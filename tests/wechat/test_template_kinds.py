"""Every kind of message the product sends passes the strict sandbox — as WeChat checks a real
account's templates (WECHAT.md trap 14) — and a template WeChat refuses is reported for its kind."""
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from app.models import (
    Announcement, AnnouncementStatus, Audience, Delivery, DeliveryStatus, HouseholdBinding, OutboundMessage,
    SubscribeConsent,
)
from tests.factories import bind_wechat_user
from tests.jobs.conftest import card
from wechat import templates
from wechat.notify import Notice, send_notice, send_notices
from wechat.templates import Fen

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 12, 2, 6, 30, tzinfo=timezone.utc)
LATER = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
LONG_ADDRESS = "和平区新华路街道幸福里小区12号楼3单元502室（东户，电梯右手边）"
# Each kind's values as its sender builds them, with the awkward ones real data brings:
# addresses and answers longer than 20 characters, line breaks, large amounts.
VALUES = {
    "task_assigned": {"ticket_no": "GD20261202-0001", "category": "报修·暖气片问题", "address": LONG_ADDRESS,
                      "problem": "暖气片接口漏水\n地面已经积水，楼下也开始渗水了", "priority": "特急", "finish_by": AT},
    "emergency_alert": {"ticket_no": "GD20261202-0002", "category": "报修·爆管", "address": LONG_ADDRESS,
                        "problem": "楼道主管爆裂", "assignee": "待派单", "reported_at": AT},
    "ticket_updated": {"ticket_no": "GD20261202-0003", "state": "已办结",
                       "result": "经检查为入户阀门未完全打开，已调整阀门并排气，室温已恢复到20度以上", "updated_at": AT},
    "ticket_dispatched": {"ticket_no": "GD20261202-0006", "crew": "和平区第一维修班组（幸福里、和平小区片区）",
                          "handler": "张志强", "expected_by": AT,
                          "note": "原班组反馈该处不属于其片区\n已转至负责该小区的班组处理"},
    "low_rating_alert": {"ticket_no": "GD20261202-0007", "score": 1, "comment": "等了两天才来人，来了也没修好，态度还很差",
                         "assignee": "王师傅", "rated_at": AT},
    "deadline_reminder": {"ticket_no": "GD20261202-0004", "address": LONG_ADDRESS, "level": "即将超时",
                          "deadline_type": "响应时限", "deadline": AT, "assignee": "王师傅"},
    "deadline_escalation": {"ticket_no": "GD20261202-0005", "address": LONG_ADDRESS, "assignee": "欧阳维修工程师张三丰李四",
                            "overdue": "办结超时", "deadline": AT},
    "cluster_alert": {"place": "幸福里小区", "reports": 12, "first_report_at": AT, "last_report_at": LATER,
                      "advice": "请核实，如确为停热请在后台转为停热"},
    "outage_notice": {"notice_type": "计划停热", "area": "幸福里小区12号楼、幸福里小区13号楼、一号换热站供热范围",
                      "period": (AT, LATER), "reason": "一次管网DN300阀门更换，需关断供水"},
    "outage_restored": {"area": LONG_ADDRESS, "restored_at": LATER, "tip": "如仍不热请回复“还冷”"},
    "announcement": {"title": "关于2026-2027供暖季延长供热时间至次年3月31日的通知",
                     "summary": "根据市供热办通知，本供暖季供热时间延长半个月。\n请广大用户相互转告。", "published_at": AT},
    "arrears_reminder": {"item": "供热费", "tip": "已过缴费期限，逾期将加收滞纳金", "reminded_at": AT},
    "payment_paid": {"account_no": "10100001", "amount": Fen(1234567), "item": "2025-2026、2026-2027供暖季供热费",
                     "paid_at": AT, "out_trade_no": "HP20261202143000123456", "tip": "重复缴纳1,234.00元，将原路退回"},
    "refund_result": {"account_no": "10100001", "amount": Fen(123400), "status": "退款成功", "at": LATER,
                      "received": "招商银行储蓄卡(1234)", "out_trade_no": "HP20261202143000123456",
                      "reason": "重复缴费退款"},
    "chat_invite": {"question": "卧室暖气片上热下凉，阀门都开着，\n已经排过气了还是不热", "reply": "客服已回复您的咨询，请进入公众号查看",
                    "replied_at": AT},
}


def _user(db, wechat, **kw):
    person, user = bind_wechat_user(db, wechat, **kw)
    db.session.commit()
    return person, user


def test_every_kind_the_senders_use_is_registered_and_every_registered_kind_is_sent():
    used = set()
    for path in list((ROOT / "jobs").glob("*.py")) + list((ROOT / "wechat").glob("*.py")):
        used |= set(re.findall(r"\bkind\s*=\s*\"([a-z_]+)\"", path.read_text(encoding="utf-8")))
    assert used == set(templates.KINDS) == set(VALUES)


@pytest.mark.parametrize("kind", sorted(templates.KINDS))
def test_each_kind_goes_out_as_its_template_message(db, wechat, kind):
    person, user = _user(db, wechat)
    outcome = send_notice(user, Notice(key=f"k:{kind}", kind=kind, title="标题", values=VALUES[kind]))
    assert (outcome.status, outcome.channel) == ("sent", "template"), outcome.reason
    (received,) = wechat.inbox(person["openid"])
    template = templates.registry().template(kind)
    assert (received["template_id"], received["title"]) == (template.template_id, template.title)
    shown = card(received)
    kind_def = templates.KINDS[kind]
    assert list(shown) == [kind_def.label_of(f) for _, f in template.keys]
    for key, name in template.keys:  # each value as its key's rule shapes it
        assert shown[kind_def.label_of(name)] == templates.shape(templates.key_type(key), VALUES[kind][name])


@pytest.mark.parametrize("kind", sorted(k for k in templates.DEFAULT_MP))
def test_each_resident_kind_goes_out_as_its_subscribe_message(db, wechat, kind):
    person, user = _user(db, wechat)
    template_id = templates.registry().subscribe(kind).template_id
    wechat._post(f"/users/{person['openid']}/consent", json={"template_id": template_id})
    db.session.add(SubscribeConsent(wechat_user_id=user.id, template_id=template_id, remaining=1))
    db.session.commit()
    outcome = send_notice(user, Notice(key=f"s:{kind}", kind=kind, title="标题", values=VALUES[kind]))
    assert (outcome.status, outcome.channel) == ("sent", "subscribe"), outcome.reason
    (received,) = wechat.inbox(person["openid"])
    assert received["kind"] == "subscribe" and received["template_id"] == template_id


def test_every_kind_goes_out_in_one_batch_too(db, wechat):
    people = [_user(db, wechat) for _ in templates.KINDS]
    batch = [(user, Notice(key=f"b:{kind}", kind=kind, title="标题", values=VALUES[kind]))
             for (_, user), kind in zip(people, sorted(templates.KINDS))]
    outcomes = send_notices(batch)
    assert [(o.status, o.channel) for o in outcomes] == [("sent", "template")] * len(batch)


# --- a template WeChat refuses: a configuration error of its kind, reported --------------------

def _notice(key="n1"):
    return Notice(key=key, kind="ticket_updated", title="您的工单已办结", values=VALUES["ticket_updated"])


def test_a_template_id_wechat_does_not_know_is_a_failure_named_after_its_kind(db, wechat, app, redis, monkeypatch):
    person, user = _user(db, wechat)
    monkeypatch.setitem(app.config, "WECHAT_TEMPLATES", {"ticket_updated": "TPL_NOT_AT_WECHAT"})
    outcome = send_notice(user, _notice())
    assert (outcome.status, outcome.channel, outcome.errcode) == ("failed", "template", 40037)
    assert "工单进度通知（ticket_updated）" in outcome.reason and "TPL_NOT_AT_WECHAT" in outcome.reason
    row = db.session.scalar(select(OutboundMessage))
    assert (row.status, row.errcode) == ("failed", 40037) and "invalid template_id" in row.errmsg
    problem = templates.problems(redis)[("template", "ticket_updated")]
    assert (problem["errcode"], problem["template_id"]) == (40037, "TPL_NOT_AT_WECHAT")
    # Fixed: the next notice of the kind goes out, and the problem is over.
    monkeypatch.setitem(app.config, "WECHAT_TEMPLATES", None)
    assert send_notice(user, _notice("n2")).status == "sent"
    assert templates.problems(redis) == {}


def test_data_wechat_refuses_falls_through_to_the_next_channel_and_keeps_the_consent(db, wechat, app, redis,
                                                                                      monkeypatch):
    person, user = _user(db, wechat)
    template_id = templates.registry().subscribe("ticket_updated").template_id
    wechat._post(f"/users/{person['openid']}/consent", json={"template_id": template_id})
    db.session.add(SubscribeConsent(wechat_user_id=user.id, template_id=template_id, remaining=1))
    db.session.commit()
    # Our subscribe template names a key the account's template does not have: 47003.
    keys = dict(templates.DEFAULT_MP["ticket_updated"].keys) | {"thing5": "result"}
    monkeypatch.setitem(app.config, "MINIAPP_TEMPLATES", {"ticket_updated": {"template_id": template_id, "keys": keys}})
    outcome = send_notice(user, _notice())
    assert (outcome.status, outcome.channel) == ("sent", "template")
    assert db.session.scalar(select(SubscribeConsent.remaining)) == 1  # WeChat sent nothing: kept
    problem = templates.problems(redis)[("subscribe", "ticket_updated")]
    assert problem["errcode"] == 47003 and "data.thing5.value invalid" in problem["message"]
    assert [m["kind"] for m in wechat.inbox(person["openid"])] == ["template"]


def test_values_a_template_cannot_take_never_reach_wechat(db, wechat, app, redis, monkeypatch):
    person, user = _user(db, wechat)
    # An operator mapped the (Chinese) result to a character_string key.
    monkeypatch.setitem(app.config, "WECHAT_TEMPLATES", {"ticket_updated": {
        "template_id": "TPL_TICKET_PROGRESS", "keys": {"character_string1": "result", "phrase2": "state",
                                                       "thing3": "ticket_no", "time4": "updated_at"}}})
    outcome = send_notice(user, _notice())
    assert (outcome.status, outcome.errcode, outcome.data_error) == ("failed", None, True)
    assert "character_string1" in outcome.reason and "result" in outcome.reason
    assert wechat.inbox(person["openid"]) == []
    assert ("template", "ticket_updated") in templates.problems(redis)
    _, other = _user(db, wechat)
    batch = send_notices([(user, _notice("b1")), (other, _notice("b2"))])
    assert batch[0].status == "failed" and batch[0].data_error
    assert batch[1] is None  # held back: the same template would fail it too; it stays pending
    assert db.session.scalar(select(OutboundMessage.status).where(OutboundMessage.dedupe_key == "b2")) == "pending"


def test_a_broadcast_whose_template_wechat_refuses_pauses_with_the_reason_and_keeps_the_rest(
        db, wechat, app, redis, worker, make_household, monkeypatch):
    from app.services import announcements as svc

    people = [_user(db, wechat) for _ in range(3)]
    home = make_household()
    db.session.add_all([HouseholdBinding(wechat_user_id=u.id, household_id=home.id, proof="owner_name")
                        for _, u in people])
    ann = Announcement(title="供热管网检修", body="本周六检修", category="notice", audience=Audience.ALL,
                       status=AnnouncementStatus.DRAFT)
    db.session.add(ann)
    db.session.commit()
    monkeypatch.setitem(app.config, "WECHAT_TEMPLATES", {"announcement": "TPL_NOT_AT_WECHAT"})
    monkeypatch.setitem(app.config, "WECHAT_SEND_CONCURRENCY", 1)  # one in flight: the first refusal stops the rest
    svc.start_announcement(ann.id)
    db.session.commit()
    worker()
    db.session.expire_all()
    ann = db.session.get(Announcement, ann.id)
    assert ann.status == AnnouncementStatus.PAUSED
    assert "40037" in ann.status_reason and "公告通知（announcement）" in ann.status_reason
    statuses = sorted(db.session.scalars(select(Delivery.status)))
    assert statuses.count(DeliveryStatus.FAILED) == 1 and statuses.count(DeliveryStatus.PENDING) == len(people) - 1
    assert ("template", "announcement") in templates.problems(redis)
    # Fixed and resumed: the rest go out.
    monkeypatch.setitem(app.config, "WECHAT_TEMPLATES", None)
    svc.resume_announcement(ann.id)
    db.session.commit()
    worker()
    db.session.expire_all()
    statuses = sorted(db.session.scalars(select(Delivery.status)))
    assert statuses == [DeliveryStatus.FAILED] + [DeliveryStatus.SENT] * (len(people) - 1)
    assert db.session.get(Announcement, ann.id).status == AnnouncementStatus.DONE


def test_a_cut_off_template_send_that_can_no_longer_be_filled_is_unknown_not_failed(db, wechat, app, monkeypatch):
    from datetime import timedelta

    from app.models import utcnow
    from app.models.messages import OutboundStatus

    person, user = _user(db, wechat)
    # A worker died during this notice's template call a minute ago (it may have arrived) …
    for key in ("n1", "b1"):
        db.session.add(OutboundMessage(dedupe_key=key, wechat_user_id=user.id, status=OutboundStatus.SENDING,
                                       channel="template", sending_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    # … and since, the kind's template was configured so that its values no longer fit.
    monkeypatch.setitem(app.config, "WECHAT_TEMPLATES", {"ticket_updated": {
        "template_id": "TPL_TICKET_PROGRESS", "keys": {"character_string1": "result", "phrase2": "state",
                                                       "thing3": "ticket_no", "time4": "updated_at"}}})
    assert send_notice(user, _notice("n1")).status == OutboundStatus.UNKNOWN
    assert send_notices([(user, _notice("b1"))])[0].status == OutboundStatus.UNKNOWN
    assert wechat.inbox(person["openid"]) == []
