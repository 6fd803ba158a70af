"""WeChat web authorisation (网页授权) as WeChat checks it: the redirect_uri on the account's
web-authorisation domain (10003 otherwise), the state a-zA-Z0-9 — also behind a TLS proxy."""
import re
from urllib.parse import parse_qs, urlsplit

import requests

from app.models import Role
from tests.factories import bind_wechat_user

INTERNAL = "http://10.0.0.5:8000"  # where nginx passes requests on, over plain HTTP


def _leader(db, staff, wechat):
    person, _ = bind_wechat_user(db, wechat, staff=staff(Role.LEADER), nickname="李总", mini_program=False)
    db.session.commit()
    return person


def test_behind_a_tls_proxy_wechat_sends_the_leader_back_to_the_public_https_address(
        app, db, staff, client, wechat, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://heat.example.com")
    wechat.faults(oauth_domain="heat.example.com")  # the account's 网页授权域名
    person = _leader(db, staff, wechat)
    # The request reaches us as http://10.0.0.5:8000; the way back must still be the public site.
    start = client.get(f"/dashboard/login?sandbox_openid={person['openid']}", base_url=INTERNAL)
    assert start.status_code == 302
    consent = requests.get(start.location.split("#")[0], allow_redirects=False, timeout=10)
    assert consent.status_code == 302, consent.text  # not WeChat's 10003 page
    back = urlsplit(consent.headers["Location"])
    assert (back.scheme, back.netloc, back.path) == ("https", "heat.example.com", "/dashboard/oauth")
    query = parse_qs(back.query)
    res = client.get(f"/dashboard/oauth?code={query['code'][0]}&state={query['state'][0]}", base_url=INTERNAL)
    assert res.status_code == 302 and res.location.endswith("/dashboard/")
    assert client.get("/dashboard/summary.json", base_url=INTERNAL).status_code == 200


def test_the_oauth_state_only_uses_characters_wechat_accepts(db, client, wechat):
    person = wechat.create_user()
    for _ in range(20):  # token_urlsafe would put "-" or "_" in about half of them
        start = client.get(f"/dashboard/login?sandbox_openid={person['openid']}")
        authorize = start.location.split("#")[0]
        state = parse_qs(urlsplit(authorize).query)["state"][0]
        assert re.fullmatch(r"[A-Za-z0-9]{1,128}", state)
        assert requests.get(authorize, allow_redirects=False, timeout=10).status_code == 302
