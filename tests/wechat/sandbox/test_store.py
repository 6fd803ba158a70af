"""Several processes mounting the sandbox share one store: tokens, codes and keys agree."""
from wechat.sandbox import create_sandbox_app


def test_two_sandboxes_on_one_store_share_tokens_codes_and_pay_keys(tmp_path):
    config = {"store_path": str(tmp_path / "shared.db")}
    one, two = create_sandbox_app(config).test_client(), create_sandbox_app(config).test_client()
    params = {"grant_type": "client_credential", "appid": "wx_demo_official_account", "secret": "demo-oa-secret"}
    token = one.get("/cgi-bin/token", query_string=params).json["access_token"]
    user = two.post("/sandbox/users", json={}).json
    assert one.get("/cgi-bin/user/info", query_string={"access_token": token, "openid": user["openid"]}).json["subscribe"] == 1

    code = one.post(f"/sandbox/users/{user['openid']}/login-code").json["code"]
    session = {"appid": "wx_demo_mini_program", "secret": "demo-mp-secret", "js_code": code}
    assert two.get("/sns/jscode2session", query_string=session).json["openid"] == user["mp_openid"]
    assert one.get("/sns/jscode2session", query_string=session).json["errcode"] == 40163

    assert one.get("/sandbox/pay/public-key").json == two.get("/sandbox/pay/public-key").json
