"""Links to the mini-program in our text messages open it: WeChat needs the mini-program's
appid on the link (data-miniprogram-appid), else it shows the words as a plain link/text."""
import re


def test_the_repair_help_link_opens_the_mini_program(app, db, wechat):
    person = wechat.create_user()
    result = wechat.send(person["openid"], type="text", content="报修")
    assert "flags" not in result, result.get("flags")
    content = result["reply"]["Content"]
    link = re.search(r'<a ([^>]*)>打开报修页面</a>', content).group(1)
    assert f'data-miniprogram-appid="{app.config["MINIAPP_APPID"]}"' in link
    assert 'data-miniprogram-path="pages/repair/new"' in link
    passive = [m for m in wechat.inbox(person["openid"]) if m["kind"] == "passive"]
    assert passive and "flags" not in passive[-1]
