"""The account's templates: WeChat refuses unknown ids (40037) and data that is not exactly a
template's keys, each value within its type's rule (47003) — through the real wechatpy client."""
import pytest
import requests
from wechatpy.exceptions import WeChatClientException


def _refusal(call):
    with pytest.raises(WeChatClientException) as error:
        call()
    return error.value.errcode, error.value.errmsg.split(" rid:")[0]


def test_a_template_id_the_account_does_not_have_is_40037(sandbox, oa_client, mp_client):
    user = sandbox.create_user()
    assert _refusal(lambda: oa_client.message.send_template(user["openid"], "NOPE", {"thing1": {"value": "x"}}))[0] == 40037
    # a mini-program template is not an official-account template message, nor the reverse
    assert _refusal(lambda: oa_client.message.send_template(user["openid"], "TID", {"thing1": {"value": "x"}}))[0] == 40037
    sandbox.post(f"/users/{user['openid']}/consent", json={"template_id": "TPL"})
    assert _refusal(lambda: mp_client.wxa.send_subscribe_message(
        user["mp_openid"], "TPL", {"thing1": {"value": "x"}}))[0] == 40037
    assert _refusal(lambda: oa_client.message.send_subscribe_message(
        user["openid"], "NOPE", {"thing1": {"value": "x"}}))[0] == 40037
    assert sandbox.inbox(user["openid"]) == []


def test_data_must_be_exactly_the_templates_keys(sandbox, oa_client):
    user = sandbox.create_user()
    send = lambda data: _refusal(lambda: oa_client.message.send_template(user["openid"], "TPL_BILL", data))
    good = {"character_string1": {"value": "10100001"}, "amount2": {"value": "¥1926.27"},
            "time3": {"value": "2026年12月31日 18:00"}}
    missing = {k: v for k, v in good.items() if k != "amount2"}
    assert send(missing) == (47003, "argument invalid! data.amount2.value is empty")
    # the old industry template's keys, sent to a typed template
    assert send({**good, "first": {"value": "您好"}}) == (47003, "argument invalid! data.first.value invalid")
    assert send({**good, "amount2": {"value": ""}}) == (47003, "argument invalid! data.amount2.value is empty")
    assert send({**good, "amount2": {"value": "1,926.27元"}}) == (47003, "argument invalid! data.amount2.value invalid")
    assert oa_client.message.send_template(user["openid"], "TPL_BILL", good)["errcode"] == 0
    assert len(sandbox.inbox(user["openid"])) == 1


# Each type's rule: values WeChat takes and values it refuses (WECHAT.md §3; WeChat's tables).
RULES = [
    ("thing1", ["和平小区3号楼暖气不热", "A" * 20, "报修·不热/停暖"], ["这是一段超过二十个字的很长很长很长很长的说明文字", "第一行\n第二行"]),
    ("character_string2", ["GD20261202-0001", "HP_2026.12/02#1"], ["工单GD1", "GD 0001", "x" * 33]),
    ("number3", ["12", "3.5", "9" * 32], ["12个", "-3", "1,200", "9" * 33]),
    ("letter4", ["ABC", "abc"], ["AB1", "A B"]),
    ("symbol5", ["-", "~!@#$"], ["a", "------"]),
    ("amount6", ["¥1926.27", "1926.27元", "￥100", "0.01", "¥9999999999"], ["1,926.27元", "¥99999999999", "一百元", "¥-5"]),
    ("time7", ["14:30", "14:30:05", "2026年12月02日 14:30", "12月2日 14:30", "2026-12-02 14:30",
               "2026年12月02日 08:00~2026年12月02日 18:00"], ["2026年12月02日", "下午两点", "25:00x"]),
    ("date8", ["2026年12月02日", "2026-12-02", "2026/12/02", "12月2日", "2026年12月", "2026年12月02日 14:30",
               "2026-12-01~2026-12-05"], ["昨天", "14:30"]),
    ("phrase9", ["已办结", "退款成功"], ["已经全部办结了", "OK", "已办结!"]),
    ("name10", ["张师傅", "王小明", "John.Smith"], ["crew1_m1", "一二三四五六七八九十一"]),
    ("phone_number11", ["13912345678", "+86-0311-66888866", "0311-6688"], ["139 1234 5678", "1" * 18, "电话13912345678"]),
    ("car_number12", ["冀A8Z888", "粤A8Z888挂"], ["冀A 8Z888", "冀A8Z8888挂挂"]),
]


@pytest.mark.parametrize("key,good,bad", RULES, ids=[r[0] for r in RULES])
def test_each_key_type_has_wechats_rule(sandbox, oa_client, key, good, bad):
    res = sandbox.post("/templates", json={"templates": [
        {"template_id": "TPL_RULE", "app": "oa", "title": "规则", "content": f"内容:{{{{{key}.DATA}}}}\n"}]})
    assert res.status_code == 200, res.text
    user = sandbox.create_user()
    for value in good:
        assert oa_client.message.send_template(user["openid"], "TPL_RULE", {key: {"value": value}})["errcode"] == 0, value
    for value in bad:
        assert _refusal(lambda: oa_client.message.send_template(user["openid"], "TPL_RULE", {key: {"value": value}})) \
            == (47003, f"argument invalid! data.{key}.value invalid"), value


def test_a_const_key_takes_only_its_approved_values(sandbox, oa_client):
    sandbox.post("/templates", json={"templates": [{
        "template_id": "TPL_CONST", "app": "oa", "title": "工单催办提醒",
        "content": "工单类型:{{const1.DATA}}\n工单名称:{{thing2.DATA}}\n", "enums": {"const1": ["报修", "投诉"]}}]})
    user = sandbox.create_user()
    send = lambda v: oa_client.message.send_template(user["openid"], "TPL_CONST",
                                                      {"const1": {"value": v}, "thing2": {"value": "暖气不热"}})
    assert send("报修")["errcode"] == 0
    assert _refusal(lambda: send("咨询")) == (47003, "argument invalid! data.const1.value invalid")


def test_subscribe_messages_keep_the_rules_and_refused_ones_use_no_consent(sandbox, mp_client):
    user = sandbox.create_user()
    sandbox.post(f"/users/{user['openid']}/consent", json={"template_id": "TID_REPAIR"})
    too_long = {"thing1": {"value": "这是一段超过二十个字的很长很长很长很长的说明文字"}}
    assert _refusal(lambda: mp_client.wxa.send_subscribe_message(user["mp_openid"], "TID_REPAIR", too_long)) \
        == (47003, "argument invalid! data.thing1.value invalid")
    extra = {"thing1": {"value": "暖气维修"}, "thing2": {"value": "多余"}}
    assert _refusal(lambda: mp_client.wxa.send_subscribe_message(user["mp_openid"], "TID_REPAIR", extra))[0] == 47003
    mp_client.wxa.send_subscribe_message(user["mp_openid"], "TID_REPAIR", {"thing1": {"value": "暖气维修"}})
    (received,) = sandbox.inbox(user["openid"])
    assert (received["kind"], received["title"], received["rows"]) == ("subscribe", "报修进度", [["报修事项", "暖气维修"]])


def test_the_account_lists_its_templates_as_wechat_does(sandbox, oa_client, mp_client):
    listed = oa_client.template.get_all_private_template()["template_list"]
    bill = next(t for t in listed if t["template_id"] == "TPL_BILL")
    assert bill["title"] == "缴费提醒"
    assert bill["content"].startswith("户号:{{character_string1.DATA}}\n")
    assert set(bill) == {"template_id", "title", "primary_industry", "deputy_industry", "content", "example"}
    assert {t["template_id"] for t in listed} == {"TPL", "TPL_BILL"}  # template messages only

    mp = requests.get(f"{sandbox.base}/wxaapi/newtmpl/gettemplate",
                      params={"access_token": mp_client.access_token}, timeout=10).json()
    assert mp["errcode"] == 0 and {t["priTmplId"] for t in mp["data"]} == {"TID", "TID_REPAIR"}
    assert all(t["type"] == 2 and "{{thing1.DATA}}" in t["content"] for t in mp["data"])
    oa = requests.get(f"{sandbox.base}/wxaapi/newtmpl/gettemplate",
                      params={"access_token": oa_client.access_token}, timeout=10).json()
    assert [t["priTmplId"] for t in oa["data"]] == ["T_OA"]  # the official account's subscription notices
    # get_all_private_template is the official account's
    assert requests.get(f"{sandbox.base}/cgi-bin/template/get_all_private_template",
                        params={"access_token": mp_client.access_token}, timeout=10).json()["errcode"] == 48001


def test_registered_templates_are_used_at_once_and_a_reset_keeps_only_the_settings(sandbox, oa_client):
    user = sandbox.create_user()
    spec = {"template_id": "TPL_NEW", "app": "oa", "title": "新模板", "content": "事项:{{thing1.DATA}}\n"}
    assert sandbox.post("/templates", json=spec).status_code == 200
    assert oa_client.message.send_template(user["openid"], "TPL_NEW", {"thing1": {"value": "x"}})["errcode"] == 0
    assert "TPL_NEW" in {t["template_id"] for t in sandbox.get("/templates").json()["templates"]}
    sandbox.post("/reset")
    ids = {t["template_id"] for t in sandbox.get("/templates").json()["templates"]}
    assert "TPL_NEW" not in ids and {"TPL", "TPL_BILL", "TID", "TID_REPAIR", "T_OA"} <= ids


@pytest.mark.parametrize("spec,complaint", [
    ({"app": "oa", "title": "x", "content": "a:{{thing1.DATA}}"}, "template_id"),
    ({"template_id": "T", "app": "wx", "content": "a:{{thing1.DATA}}"}, "app"),
    ({"template_id": "T", "app": "mp", "type": "template", "content": "a:{{thing1.DATA}}"}, "type"),
    ({"template_id": "T", "app": "oa", "content": "没有参数"}, "content"),
    ({"template_id": "T", "app": "oa", "content": "a:{{thing1.DATA}}\nb:{{thing1.DATA}}"}, "twice"),
    ({"template_id": "T", "app": "oa", "content": "a:{{const1.DATA}}", "enums": {"const2": ["x"]}}, "enums"),
])
def test_a_template_registration_that_cannot_be_used_is_400(sandbox, spec, complaint):
    res = sandbox.post("/templates", json={"templates": [spec]})
    assert res.status_code == 400 and complaint in res.json()["error"]["message"]
