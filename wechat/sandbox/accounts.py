"""Followers, tags and the custom menu of the official account (WECHAT.md §3)."""
from __future__ import annotations

import json

from flask import Blueprint, jsonify, request

from .errors import WeChatError
from .tokens import json_body, wechat_api

PAGE_SIZE = 10_000
MAX_TAGS = 100
MAX_TAGS_PER_USER = 20


def user_info(sb, openid: str) -> dict:
    row = sb.store.one("SELECT * FROM users WHERE oa_openid = ?", openid or "")
    if row is None:
        raise WeChatError(40003)
    if not row["subscribed"]:  # no profile for people who do not follow
        return {"subscribe": 0, "openid": row["oa_openid"], "unionid": row["unionid"]}
    return {
        "subscribe": 1, "openid": row["oa_openid"], "language": "zh_CN",
        "subscribe_time": row["subscribe_time"], "unionid": row["unionid"], "remark": "", "groupid": 0,
        "tagid_list": json.loads(row["tagids"]), "subscribe_scene": row["subscribe_scene"] or "ADD_SCENE_SEARCH",
        "qr_scene": int(row["qr_scene"]) if (row["qr_scene"] or "").isdigit() else 0,
        "qr_scene_str": "" if (row["qr_scene"] or "").isdigit() else (row["qr_scene"] or ""),
    }


# menu/create's rules: name ≤ 16 bytes at the top, ≤ 60 below; key ≤ 128; url ≤ 1024; a button
# with no sub-buttons needs a known type and what the type needs (the codes: top / sub).
MENU_TYPES = {"click": "key", "view": "url", "miniprogram": "url", "scancode_push": "key",
              "scancode_waitmsg": "key", "pic_sysphoto": "key", "pic_photo_or_album": "key",
              "pic_weixin": "key", "location_select": "key", "media_id": "media_id",
              "article_id": "article_id", "article_view_limited": "article_id"}


def _check_button(button: dict, *, top: bool, leaf: bool) -> None:
    codes = (40017, 40018, 40019, 40020) if top else (40024, 40025, 40026, 40027)
    name = button.get("name")
    if not isinstance(name, str) or not name or len(name.encode()) > (16 if top else 60):
        raise WeChatError(codes[1])
    if not leaf:
        return
    kind = button.get("type")
    if kind not in MENU_TYPES or not button.get(MENU_TYPES[kind]):
        raise WeChatError(codes[0])
    if kind == "miniprogram" and not (button.get("appid") and button.get("pagepath")):
        raise WeChatError(codes[0])
    if len(str(button.get("key") or "").encode()) > 128:
        raise WeChatError(codes[2])
    if len(str(button.get("url") or "").encode()) > 1024:
        raise WeChatError(codes[3])


def register(bp: Blueprint, sb) -> None:
    @bp.route("/cgi-bin/user/info")
    @wechat_api(sb, "cgi-bin/user/info", app="oa")
    def info(appid):
        return jsonify(user_info(sb, request.args.get("openid")))

    @bp.route("/cgi-bin/user/info/batchget", methods=["POST"])
    @wechat_api(sb, "cgi-bin/user/info/batchget", app="oa")
    def batchget(appid):
        users = json_body().get("user_list")
        if not isinstance(users, list) or not 1 <= len(users) <= 100:
            raise WeChatError(40032)
        return jsonify({"user_info_list": [user_info(sb, u.get("openid")) for u in users]})

    @bp.route("/cgi-bin/user/get")
    @wechat_api(sb, "cgi-bin/user/get", app="oa")
    def followers(appid):
        total = sb.store.one("SELECT COUNT(*) AS n FROM users WHERE subscribed = 1")["n"]
        rows = sb.store.all(
            "SELECT oa_openid FROM users WHERE subscribed = 1 AND oa_openid > ? ORDER BY oa_openid LIMIT ?",
            request.args.get("next_openid", ""), PAGE_SIZE,
        )
        openids = [r["oa_openid"] for r in rows]
        answer = {"total": total, "count": len(openids), "next_openid": openids[-1] if openids else ""}
        if openids:
            answer["data"] = {"openid": openids}
        return jsonify(answer)

    @bp.route("/cgi-bin/tags/create", methods=["POST"])
    @wechat_api(sb, "cgi-bin/tags/create", app="oa")
    def tag_create(appid):
        name = ((json_body().get("tag") or {}).get("name") or "").strip()
        if not name:
            raise WeChatError(45157)
        if len(name.encode()) > 30:
            raise WeChatError(45158)
        with sb.store.tx() as conn:
            if conn.execute("SELECT COUNT(*) AS n FROM tags").fetchone()["n"] >= MAX_TAGS:
                raise WeChatError(45056, "too many tags")
            if conn.execute("SELECT 1 FROM tags WHERE name = ?", (name,)).fetchone():
                raise WeChatError(45157)
            # WeChat reserves ids 0-2 for its own tags
            tag_id = conn.execute("INSERT INTO tags (id, name) VALUES ((SELECT MAX(100, IFNULL(MAX(id), 99) + 1) FROM tags), ?)",
                                  (name,)).lastrowid
        return jsonify({"tag": {"id": tag_id, "name": name}})

    @bp.route("/cgi-bin/tags/get")
    @wechat_api(sb, "cgi-bin/tags/get", app="oa")
    def tag_list(appid):
        tags = []
        for row in sb.store.all("SELECT * FROM tags ORDER BY id"):
            count = sum(1 for u in sb.store.all("SELECT tagids FROM users") if row["id"] in json.loads(u["tagids"]))
            tags.append({"id": row["id"], "name": row["name"], "count": count})
        return jsonify({"tags": tags})

    def _tagging(add: bool):
        data = json_body()
        openids, tag_id = data.get("openid_list"), data.get("tagid")
        if not isinstance(openids, list) or not 1 <= len(openids) <= 50:
            raise WeChatError(40032)
        with sb.store.tx() as conn:
            if not conn.execute("SELECT 1 FROM tags WHERE id = ?", (tag_id,)).fetchone():
                raise WeChatError(45159)
            for openid in openids:
                row = conn.execute("SELECT tagids FROM users WHERE oa_openid = ?", (openid,)).fetchone()
                if row is None:
                    raise WeChatError(40003)
                tags = [t for t in json.loads(row["tagids"]) if t != tag_id]
                if add:
                    if len(tags) >= MAX_TAGS_PER_USER:
                        raise WeChatError(45059, "has too many tags")
                    tags.append(tag_id)
                conn.execute("UPDATE users SET tagids = ? WHERE oa_openid = ?", (json.dumps(tags), openid))
        return jsonify({"errcode": 0, "errmsg": "ok"})

    @bp.route("/cgi-bin/tags/members/batchtagging", methods=["POST"])
    @wechat_api(sb, "cgi-bin/tags/members/batchtagging", app="oa")
    def batchtagging(appid):
        return _tagging(add=True)

    @bp.route("/cgi-bin/tags/members/batchuntagging", methods=["POST"])
    @wechat_api(sb, "cgi-bin/tags/members/batchuntagging", app="oa")
    def batchuntagging(appid):
        return _tagging(add=False)

    @bp.route("/cgi-bin/user/tag/get", methods=["POST"])
    @wechat_api(sb, "cgi-bin/user/tag/get", app="oa")
    def tag_members(appid):
        tag_id = json_body().get("tagid")
        rows = sb.store.all("SELECT oa_openid, tagids FROM users ORDER BY oa_openid")
        openids = [r["oa_openid"] for r in rows if tag_id in json.loads(r["tagids"])]
        return jsonify({"count": len(openids), "data": {"openid": openids}, "next_openid": openids[-1] if openids else ""})

    @bp.route("/cgi-bin/menu/create", methods=["POST"])
    @wechat_api(sb, "cgi-bin/menu/create", app="oa")
    def menu_create(appid):
        data = json_body()
        buttons = data.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise WeChatError(40016, "invalid button size")
        for button in buttons:
            subs = button.get("sub_button") or []
            if len(subs) > 5:
                raise WeChatError(40023, "invalid sub button size")
            _check_button(button, top=True, leaf=not subs)
            for sub in subs:
                _check_button(sub, top=False, leaf=True)
        sb.store.set_json("menu", data)
        return jsonify({"errcode": 0, "errmsg": "ok"})

    @bp.route("/cgi-bin/menu/get")
    @wechat_api(sb, "cgi-bin/menu/get", app="oa")
    def menu_get(appid):
        menu = sb.store.get_json("menu")
        if menu is None:
            raise WeChatError(46003)
        return jsonify({"menu": menu})

    @bp.route("/cgi-bin/menu/delete")
    @wechat_api(sb, "cgi-bin/menu/delete", app="oa")
    def menu_delete(appid):
        sb.store.run("DELETE FROM kv WHERE key = 'menu'")
        return jsonify({"errcode": 0, "errmsg": "ok"})
