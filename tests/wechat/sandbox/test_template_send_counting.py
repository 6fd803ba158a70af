"""Template messages are counted the way every WeChat API call is, though the sandbox counts
them in the same write as the message: refused calls count too, and the minute limit and
the daily quota answer before the call's own errors; a repeat by client_msg_id counts and is
not sent again."""
import pytest
from wechatpy.exceptions import WeChatClientException

DATA = {"thing1": {"value": "停热通知"}}


def _errcode(call):
    with pytest.raises(WeChatClientException) as error:
        call()
    return error.value.errcode


def test_refused_template_sends_count_against_the_daily_quota(sandbox, oa_client):
    user, gone = sandbox.create_user(), sandbox.create_user(follow=False)
    sandbox.faults(daily_quota={"message/template/send": 3})
    assert _errcode(lambda: oa_client.message.send_template(gone["openid"], "TPL", DATA)) == 43004
    assert _errcode(lambda: oa_client.message.send_template("o" + "x" * 27, "TPL", DATA)) == 40003
    assert _errcode(lambda: oa_client.message.send_template(user["openid"], "NO_SUCH_TPL", DATA)) == 40037
    # Three calls spent the day's three: the fourth, a good one, is refused with 45009 and not sent.
    assert _errcode(lambda: oa_client.message.send_template(user["openid"], "TPL", DATA)) == 45009
    assert [m for m in sandbox.inbox(user["openid"]) if m["kind"] == "template"] == []


def test_quota_answers_before_the_calls_own_error(sandbox, oa_client):
    gone = sandbox.create_user(follow=False)
    sandbox.faults(daily_quota={"message/template/send": 1})
    assert _errcode(lambda: oa_client.message.send_template(gone["openid"], "TPL", DATA)) == 43004
    assert _errcode(lambda: oa_client.message.send_template(gone["openid"], "TPL", DATA)) == 45009


def test_minute_limit_gives_45011_and_sends_nothing(sandbox, oa_client):
    user = sandbox.create_user()
    sandbox.faults(rate_limit_per_minute=2)
    oa_client.message.send_template(user["openid"], "TPL", DATA)
    oa_client.message.send_template(user["openid"], "TPL", DATA)
    assert _errcode(lambda: oa_client.message.send_template(user["openid"], "TPL", DATA)) == 45011
    assert len([m for m in sandbox.inbox(user["openid"]) if m["kind"] == "template"]) == 2


def test_repeat_by_client_msg_id_counts_and_is_sent_once(sandbox, oa_client):
    user = sandbox.create_user()
    sandbox.faults(daily_quota={"message/template/send": 2})
    body = {"touser": user["openid"], "template_id": "TPL", "data": DATA, "client_msg_id": "notice-1"}
    first = oa_client.post("message/template/send", data=body)
    again = oa_client.post("message/template/send", data=body)
    assert again["msgid"] == first["msgid"]
    assert len([m for m in sandbox.inbox(user["openid"]) if m["kind"] == "template"]) == 1
    assert _errcode(lambda: oa_client.post("message/template/send", data=body)) == 45009
