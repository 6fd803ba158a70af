"""A person who uses only the official account's pages is joined with their mini-program self:
the web sign-in asks WeChat for the unionid (jobs.identity.learn_unionid) as the chat does."""
from __future__ import annotations

import requests
from sqlalchemy import func, select

from app.models import HouseholdBinding, WechatUser
from app.queue import get_queue


def _mini_program_login(client, wechat, openid) -> dict:
    code = requests.post(f"{wechat.base}/users/{openid}/login-code", timeout=10).json()["code"]
    res = client.post("/api/v1/auth/login", json={"code": code})
    assert res.status_code == 200, res.get_data(as_text=True)
    return res.get_json()


def _rows(db) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(WechatUser.id)))


def test_signing_in_to_the_pages_joins_the_person_with_their_mini_program_row(h5, db, app, wechat, worker,
                                                                            make_household, redis):
    me = h5.resident("刘秀英")
    household = make_household(owner_name="刘秀英")
    db.session.commit()
    # First the mini-program: a row with the mini-program openid and the unionid, a household bound there.
    login = _mini_program_login(app.test_client(), wechat, me.openid)
    bound = app.test_client().post("/api/v1/households/bind", json={"account_no": household.account_no,
                                                                     "owner_name": "刘秀英"},
                                   headers={"Authorization": f"Bearer {login['token']}"})
    assert bound.status_code == 201, bound.get_data(as_text=True)

    # Then the official account's pages only (no chat message): a row for the account's openid.
    me.sign_in()
    assert _rows(db) == 2
    worker()   # the sign-in asked WeChat who this is
    assert _rows(db) == 1
    person = db.session.scalar(select(WechatUser))
    assert person.oa_openid == me.openid and person.mp_openid and person.unionid
    # Signed in still, as the joined person: the household bound in the mini-program is on 我的.
    assert household.account_no in me.open("/me").get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(HouseholdBinding)) == 1


def test_the_pages_ask_wechat_about_a_person_once_a_day(h5, db, redis):
    me = h5.resident("王芳")
    me.sign_in()
    me.sign_in()   # again the same day
    asks = [job.args for job in get_queue("default").jobs if job.func_name == "jobs.identity.learn_unionid"]
    assert asks == [(me.openid,)]
