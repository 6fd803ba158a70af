"""The template registry: each key type's rule applied to our values, and the settings that
name each kind's template (wechat/templates.py). No WeChat here; tests/wechat/test_template_kinds.py
sends every kind through the sandbox."""
from datetime import date, datetime, timezone

import pytest

from app.config import Config, ConfigError
from wechat import templates as t
from wechat.templates import Fen, ShapeError, TemplateConfigError, build_registry, shape

AT = datetime(2026, 12, 2, 6, 30, tzinfo=timezone.utc)   # 14:30 in Beijing
LATER = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)


# --- one rule per key type --------------------------------------------------------------------

def test_thing_is_cut_to_20_characters_with_an_ellipsis_on_one_line():
    assert shape("thing", "和平小区3号楼") == "和平小区3号楼"
    long = "和平区新华路街道幸福里小区12号楼3单元502室"
    assert len(long) > 20
    assert shape("thing", long) == long[:19] + "…" and len(shape("thing", long)) == 20
    assert shape("thing", "第一行\n第二行\t 第三行") == "第一行 第二行 第三行"
    assert shape("thing", "A" * 20) == "A" * 20
    with pytest.raises(ShapeError):
        shape("thing", "   ")
    with pytest.raises(ShapeError):
        shape("thing", None)


def test_time_is_beijing_time_with_the_date_and_ranges_join_with_a_tilde():
    assert shape("time", AT) == "2026年12月02日 14:30"
    assert shape("time", (AT, LATER)) == "2026年12月02日 14:30~2026年12月02日 18:00"
    assert shape("time", (AT, None)) == "2026年12月02日 14:30"
    assert shape("time", "2026-12-02 14:30") == "2026-12-02 14:30"  # already WeChat's format
    with pytest.raises(ShapeError):
        shape("time", date(2026, 12, 2))   # a date has no time of day
    with pytest.raises(ShapeError):
        shape("time", "下午两点")


def test_date_is_a_calendar_day():
    assert shape("date", date(2026, 12, 2)) == "2026年12月02日"
    assert shape("date", datetime(2026, 12, 1, 17, 0, tzinfo=timezone.utc)) == "2026年12月02日"  # Beijing's day
    assert shape("date", "2026-12-02") == "2026-12-02"
    with pytest.raises(ShapeError):
        shape("date", "明天")


def test_amount_is_a_currency_sign_and_plain_digits():
    assert shape("amount", Fen(192627)) == "¥1926.27"
    assert shape("amount", Fen(5)) == "¥0.05"
    assert shape("amount", "1,926.27元") == "¥1926.27"   # WeChat takes digits only: no separator
    assert shape("amount", Fen(9999999999)) == "¥99999999.99"   # 10 digits
    with pytest.raises(ShapeError):
        shape("amount", Fen(10000000000))   # 11 digits
    with pytest.raises(ShapeError):
        shape("amount", "一百元")


def test_phrase_is_at_most_five_chinese_characters():
    assert shape("phrase", "已办结") == "已办结"
    assert shape("phrase", " 退款成功 ") == "退款成功"
    for bad in ("已经全部办结", "OK", "已办结!", "第1次"):
        with pytest.raises(ShapeError):
            shape("phrase", bad)


def test_character_string_is_ascii_without_spaces_up_to_32():
    assert shape("character_string", "GD20261202-0001") == "GD20261202-0001"
    assert shape("character_string", " HP 2026 ") == "HP2026"
    assert shape("character_string", 10100001) == "10100001"
    with pytest.raises(ShapeError):
        shape("character_string", "和平小区3号楼")
    with pytest.raises(ShapeError):
        shape("character_string", "x" * 33)


def test_number_letter_symbol():
    assert shape("number", 12) == "12" and shape("number", "3.5") == "3.5"
    assert shape("letter", "ABC") == "ABC"
    assert shape("symbol", "-") == "-"
    for ktype, bad in (("number", "12个"), ("number", "-3"), ("number", "9" * 33), ("letter", "AB1"),
                       ("symbol", "a"), ("symbol", "------")):
        with pytest.raises(ShapeError):
            shape(ktype, bad)


def test_name_is_cut_to_ten_chinese_or_twenty_latin_without_digits():
    assert shape("name", "张师傅") == "张师傅"
    assert shape("name", "欧阳维修工程师张三丰李四王五") == "欧阳维修工程师张三丰"
    assert shape("name", "crew1_m1") == "crew_m"
    with pytest.raises(ShapeError):
        shape("name", "007")


def test_phone_and_car_numbers():
    assert shape("phone_number", "0311-6688 8866") == "0311-66888866"
    assert shape("car_number", "冀a 8z888") == "冀A8Z888"
    for ktype, bad in (("phone_number", "1" * 18), ("phone_number", "电话123"), ("car_number", "冀A8Z8888挂挂")):
        with pytest.raises(ShapeError):
            shape(ktype, bad)


def test_const_takes_only_the_approved_values_and_old_keys_take_text():
    assert shape("const", "报修", allowed=("报修", "投诉")) == "报修"
    with pytest.raises(ShapeError):
        shape("const", "咨询", allowed=("报修", "投诉"))
    assert shape("text", "x" * 250).endswith("…") and len(shape("text", "x" * 250)) == 200


def test_key_types_come_from_the_key_names():
    assert [t.key_type(k) for k in ("thing1", "character_string12", "time2", "phone_number3", "first",
                                    "keyword4", "remark", "enum_string5", "short_thing6")] == [
        "thing", "character_string", "time", "phone_number", "text", "text", "text", "enum", None]


def test_a_template_fills_exactly_its_keys_and_names_the_key_it_cannot_fill():
    registry = build_registry({})
    template = registry.template("payment_paid")
    kind = t.KINDS["payment_paid"]
    values = {"account_no": "10100001", "amount": Fen(192627), "item": "2026-2027供暖季供热费", "paid_at": AT,
              "out_trade_no": "HP1", "tip": "点击查看电子收据"}
    assert template.render(kind, values) == {
        "character_string1": {"value": "10100001"}, "amount2": {"value": "¥1926.27"},
        "thing3": {"value": "2026-2027供暖季供热费"}, "time4": {"value": "2026年12月02日 14:30"},
        "thing5": {"value": "点击查看电子收据"}}
    with pytest.raises(t.TemplateDataError) as error:
        template.render(kind, {**values, "account_no": "和平小区"})
    assert (error.value.kind, error.value.key, error.value.field) == ("payment_paid", "character_string1", "account_no")
    assert "缴费成功通知（payment_paid）" in str(error.value)


def test_values_survive_the_trip_through_json():
    values = {"amount": Fen(12), "at": AT, "day": date(2026, 12, 2), "period": (AT, None), "n": 3, "s": "x"}
    assert t.decode_values(t.encode_values(values)) == values
    assert isinstance(t.decode_values(t.encode_values(values))["amount"], Fen)


# --- the settings ---------------------------------------------------------------------------------

def test_every_kind_has_a_template_and_resident_kinds_a_subscribe_template_in_the_demo():
    registry = build_registry({})
    assert set(registry.oa) == set(t.KINDS)
    residents = {k for k, kind in t.KINDS.items() if kind.audience == "resident"}
    assert set(registry.mp) == residents
    for table in (registry.oa, registry.mp):
        for kind_name, template in table.items():
            fields = dict(t.KINDS[kind_name].fields)
            assert all(f in fields and t.key_type(k) for k, f in template.keys), kind_name


def test_a_deployment_replaces_a_kinds_template_keeps_the_others_and_turns_one_off():
    registry = build_registry({"WECHAT_TEMPLATES": {
        "ticket_updated": {"template_id": "real-id-1", "title": "工单处理进度提醒",
                           "keys": {"character_string2": "ticket_no", "thing5": "result", "phrase9": "state"}},
        "payment_paid": "real-id-2",
        "arrears_reminder": None,
    }, "MINIAPP_TEMPLATES": {"announcement": None}})
    mine = registry.template("ticket_updated")
    assert (mine.template_id, mine.title, mine.key_names()) == ("real-id-1", "工单处理进度提醒",
                                                                ("character_string2", "thing5", "phrase9"))
    paid = registry.template("payment_paid")
    assert paid.template_id == "real-id-2" and paid.keys == t.DEFAULT_OA["payment_paid"].keys
    assert registry.template("arrears_reminder") is None and registry.subscribe("announcement") is None
    assert registry.template("task_assigned") == t.DEFAULT_OA["task_assigned"]


@pytest.mark.parametrize("settings,complaint", [
    ({"WECHAT_TEMPLATES": {"no_such_kind": "x"}}, "未知的消息类型"),
    ({"WECHAT_TEMPLATES": {"ticket_updated": {"template_id": "x", "keys": {"thing1": "nope"}}}}, "未知字段"),
    ({"WECHAT_TEMPLATES": {"ticket_updated": {"template_id": "x", "keys": {"weird1": "result"}}}}, "未知的参数类型"),
    ({"WECHAT_TEMPLATES": {"ticket_updated": {"keys": {"thing1": "result"}}}}, "template_id"),
    ({"WECHAT_TEMPLATES": ["x"]}, "JSON 对象"),
    ({"WECHAT_TEMPLATES": {"ticket_updated": "same", "announcement": "same"}}, "同一模板"),
])
def test_settings_that_cannot_work_are_refused_naming_the_problem(settings, complaint):
    with pytest.raises(TemplateConfigError) as error:
        build_registry(settings)
    assert complaint in str(error.value)


def test_production_refuses_kinds_still_on_demo_template_ids():
    real = {k: None for k in t.KINDS}
    real["ticket_updated"] = "wxRealTemplateId0123456789abcdefghijklmnopq"
    with pytest.raises(TemplateConfigError) as error:
        build_registry({"ENV_NAME": "production", "WECHAT_TEMPLATES": real})
    message = str(error.value)
    assert "MINIAPP_TEMPLATES.ticket_updated" in message and "WECHAT_TEMPLATES" not in message.split("\n", 1)[1]
    build_registry({"ENV_NAME": "production", "WECHAT_TEMPLATES": real, "MINIAPP_TEMPLATES": {k: None for k in t.KINDS}})


def test_the_settings_are_json_inline_or_in_a_file(monkeypatch, tmp_path):
    monkeypatch.setenv("WECHAT_TEMPLATES", '{"payment_paid": "id-1"}')
    path = tmp_path / "mp.json"
    path.write_text('{"announcement": null}', encoding="utf-8")
    monkeypatch.setenv("MINIAPP_TEMPLATES", f"@{path}")
    cfg = Config()
    assert cfg.WECHAT_TEMPLATES == {"payment_paid": "id-1"} and cfg.MINIAPP_TEMPLATES == {"announcement": None}
    monkeypatch.setenv("WECHAT_TEMPLATES", "{not json")
    with pytest.raises(ConfigError, match="WECHAT_TEMPLATES"):
        Config()
    monkeypatch.setenv("WECHAT_TEMPLATES", f"@{tmp_path / 'missing.json'}")
    with pytest.raises(ConfigError, match="missing.json"):
        Config()


def test_an_app_with_templates_it_cannot_use_does_not_start(monkeypatch):
    from app import create_app

    monkeypatch.setenv("WECHAT_TEMPLATES", '{"ticket_updated": {"template_id": "x", "keys": {"thing1": "nope"}}}')
    with pytest.raises(ConfigError, match="未知字段"):
        create_app(Config())


def test_flask_wechat_templates_lists_each_kind_and_prints_settings_to_edit(runner):
    listing = runner.invoke(args=["wechat", "templates"])
    assert listing.exit_code == 0, listing.output
    assert "payment_paid  缴费成功通知（住户）" in listing.output
    assert "TPL_PAYMENT_PAID 缴费成功通知 [演示模板ID demo id]" in listing.output
    assert "amount2" in listing.output and "← amount（缴费金额）" in listing.output
    printed = runner.invoke(args=["wechat", "templates", "--json"])
    assert printed.exit_code == 0, printed.output
    import json

    settings = json.loads(printed.output)
    again = build_registry(settings)  # what it prints is a valid setting: the same registry
    assert again == build_registry({})
    # One file for both settings: each takes its own part.
    settings["WECHAT_TEMPLATES"]["payment_paid"]["template_id"] = "real-oa-id"
    settings["MINIAPP_TEMPLATES"]["payment_paid"]["template_id"] = "real-mp-id"
    both = build_registry({"WECHAT_TEMPLATES": settings, "MINIAPP_TEMPLATES": settings})
    assert (both.template("payment_paid").template_id, both.subscribe("payment_paid").template_id) == \
        ("real-oa-id", "real-mp-id")
