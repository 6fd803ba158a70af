"""The console's 消息模板 page: every kind of message with its templates and keys, the demo ids
marked, and the latest refusal WeChat gave for a kind."""
from app.models import Role, utcnow
from wechat import templates


def test_admins_see_each_kind_with_its_templates_keys_and_latest_problem(db, redis, staff, console):
    templates.record_problem(redis, "template", "payment_paid", "TPL_PAYMENT_PAID", 47003,
                             "模板消息被微信拒绝（47003 argument invalid! data.amount2.value invalid）", utcnow())
    console.login(staff(Role.ADMIN).username)
    page = console.get("/console/templates").get_data(as_text=True)
    for kind in templates.KINDS.values():
        assert f'data-kind="{kind.name}"' in page and kind.label in page
    assert "TPL_TICKET_PROGRESS" in page and "MP_TPL_TICKET_PROGRESS" in page
    assert "<code>character_string1</code> 字符串 ← 工单编号" in page
    assert page.count("演示") >= len(templates.KINDS)  # the demo ids are marked for going live
    assert page.count("data-problem") == 1 and "data.amount2.value invalid" in page
    assert console.get("/console/templates").status_code == 200


def test_agents_are_refused_the_admin_page(staff, console):
    console.login(staff(Role.AGENT).username)
    assert console.get("/console/templates").status_code == 403


def test_the_page_needs_a_console_sign_in(client):
    assert client.get("/console/templates").status_code in (302, 401)
