"""Malformed and oversized input at the mini-program's doors: a clear 4xx, never a 5xx."""
from __future__ import annotations

import functools
import io

import pytest
import requests
from PIL import Image
from sqlalchemy import func, select

from app.models import Ticket
from tests.mobile_api.test_pay_notify import _genuine, _resident_with_order, _transaction


@functools.lru_cache(maxsize=None)
def flat_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 128).save(out, "PNG")
    return out.getvalue()


def _repair_form(world, **changes) -> dict:
    form = {"household_id": (None, str(world.household.id)), "category": (None, "leak"),
            "description": (None, "0"), "latitude": (None, "0.0"), "longitude": (None, "0.0"),
            "location": (None, "")}
    form.update(changes)
    return form


def _tickets(db) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Ticket))


@pytest.mark.parametrize("timestamp", ["²", "¹²³", "9" * 5000, "9" * 40, "", "-1", "1e9",
                                       "１２３".encode(), "٣٣٣".encode()])
def test_a_malformed_wechatpay_timestamp_is_refused_like_any_bad_signature(app, db, pay_wechat, world, api,
                                                                            live_app, timestamp):
    _, order = _resident_with_order(db, pay_wechat, world, api)
    body, headers = _genuine(pay_wechat, app, _transaction(app, order))
    answer = requests.post(live_app.url + "/pay/notify", data=body, timeout=10,
                           headers={**headers, "Wechatpay-Timestamp": timestamp})
    assert answer.status_code == 401
    assert answer.json() == {"code": "FAIL", "message": "签名验证失败"}


@pytest.mark.parametrize("code", ["x" * 129, "a b", "中文", "code\n", "\u0000", "0a3X;DROP", " " * 5])
def test_an_odd_login_code_is_the_callers_mistake(db, pay_wechat, api, code):
    answer = api().post("/api/v1/auth/login", json={"code": code})
    assert answer.status_code == 400, answer.text
    assert "code" in answer.json()["error"]["fields"]


def test_a_well_formed_but_unknown_login_code_is_401_not_an_outage(db, pay_wechat, api):
    answer = api().post("/api/v1/auth/login", json={"code": "0" * 128})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_code"


def test_a_photos_part_that_is_text_not_a_file_is_400_with_the_field(db, world, pay_wechat, api):
    me, _ = _resident_with_order(db, pay_wechat, world, api)
    before = _tickets(db)
    answer = me.post("/api/v1/repairs", files=_repair_form(world, photos=(None, "{}")))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["fields"]["photos"]
    text_and_file = list(_repair_form(world).items()) + [("photos", (None, "{}")),
                                                         ("photos", ("p.png", flat_png(64, 64), "image/png"))]
    assert me.post("/api/v1/repairs", files=text_and_file).status_code == 400
    assert _tickets(db) == before


def test_nine_6300_square_photos_are_413_with_a_clear_message_and_no_ticket(db, world, pay_wechat, api):
    me, _ = _resident_with_order(db, pay_wechat, world, api)
    before = _tickets(db)
    photo = flat_png(6300, 6300)          # 39.7 MP each, a few hundred KB as a file
    files = list(_repair_form(world).items()) + [("photos", (f"p{i}.png", photo, "image/png")) for i in range(9)]
    answer = me.post("/api/v1/repairs", files=files)
    assert answer.status_code == 413, answer.text
    error = answer.json()["error"]
    assert error["code"] == "payload_too_large" and "照片总尺寸过大" in error["message"]
    assert error["fields"]["photos"]
    assert _tickets(db) == before
