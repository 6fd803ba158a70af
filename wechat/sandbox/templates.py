"""The account's templates, and WeChat's rules for the data sent with them.

A real account has the templates its operator picked in the admin console: template messages
for the official account (``GET /cgi-bin/template/get_all_private_template``) and subscribe
templates for the mini-program (and for the official account's subscription notices,
``GET /wxaapi/newtmpl/gettemplate``). WeChat refuses a send whose template id is not one of
them (40037) and whose ``data`` is not exactly the template's keys, each value within its
type's rule (47003, ``argument invalid! data.<key>.value invalid``) — WECHAT.md §3, trap 14.

The sandbox learns an account's templates as WeChat does, from outside: the ``templates``
setting (what ``wechat.sandbox_link`` passes from the backend's configuration) and
``POST /sandbox/templates`` (what ``flask wechat register-demo`` posts to a sandbox running as
its own process). A template is given as WeChat lists it: its ``content``
(``工单编号:{{character_string1.DATA}}\\n…``) names its keys; ``enums`` lists the approved
values of ``const``/``enum`` keys.

The rules (WeChat's tables for subscribe messages and category template messages):

| type | accepted |
| --- | --- |
| ``thing`` | 1–20 characters, no line breaks or other control characters |
| ``number`` | up to 32 digits, with decimals |
| ``letter`` | up to 32 letters |
| ``symbol`` | up to 5 symbols |
| ``character_string`` | up to 32 digits, letters or symbols (printable ASCII, no spaces) |
| ``time`` | 24-hour ``HH:MM[:SS]``, a date may come first (年月日, or joined by - / .); a range joined by ``~`` |
| ``date`` | a date (y年m月d日, y年m月, m月d日, or joined by - / .), a time may follow; a range joined by ``~`` |
| ``amount`` | an optional currency sign (¥ ￥ $), up to 10 digits with decimals, optionally ending in 元 |
| ``phrase`` | 1–5 Chinese characters |
| ``name`` | up to 10 Chinese characters (mixed counts as Chinese), or up to 20 letters and symbols; no digits |
| ``phone_number`` | up to 17 digits and symbols (+ - ( )) |
| ``car_number`` | up to 8; first and last may be Chinese, the rest letters or digits |
| ``const``, ``enum`` | one of the template's approved values when it lists them, else 1–20 characters |
| others (``first``, ``keywordN``, ``remark``) | any non-empty text |

Where WeChat documents a rule but not its wording, the sandbox picks: a key the template does
not have is answered like a bad value (``data.<key>.value invalid``), a missing one like an
empty value (``data.<key>.value is empty``); the currency sign of ``amount`` is optional (the
backend always sends one).
"""
from __future__ import annotations

import functools
import json
import re

from flask import Blueprint, jsonify, request

from .errors import ControlError, WeChatError
from .tokens import app_kind, wechat_api

KEY_RE = re.compile(r"\{\{\s*([A-Za-z_]+\d*)\.DATA\s*\}\}")
CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
TIME_POINT = r"(?:(?:\d{4}年)?\d{1,2}月\d{1,2}日 ?|\d{4}[-/.]\d{1,2}[-/.]\d{1,2} )?\d{1,2}:\d{2}(?::\d{2})?"
DATE_POINT = (r"(?:\d{4}年\d{1,2}月(?:\d{1,2}日)?|\d{1,2}月\d{1,2}日|\d{4}[-/.]\d{1,2}(?:[-/.]\d{1,2})?"
              r"|\d{1,2}[-/.]\d{1,2})(?: ?\d{1,2}:\d{2}(?::\d{2})?)?")
TYPES = ("thing", "character_string", "number", "letter", "symbol", "amount", "time", "date", "phrase", "name",
         "phone_number", "car_number", "const", "enum")


def _time(v: str) -> bool:
    return re.fullmatch(rf"{TIME_POINT}(?:~{TIME_POINT})?", v) is not None


def _date(v: str) -> bool:
    return re.fullmatch(rf"{DATE_POINT}(?:~{DATE_POINT})?", v) is not None


def _amount(v: str) -> bool:
    m = re.fullmatch(r"[¥￥$]?(\d+(?:\.\d+)?)元?", v)
    return m is not None and len(m.group(1).replace(".", "")) <= 10


def _name(v: str) -> bool:
    if re.search(r"[\d\s]", v):
        return False
    return len(v) <= 10 if re.search(rf"[{CJK}]", v) else len(v) <= 20


def _car(v: str) -> bool:
    return len(v) <= 8 and re.fullmatch(rf"[{CJK}]?[A-Za-z0-9]+[{CJK}]?", v) is not None


RULES = {
    "thing": lambda v: len(v) <= 20,
    "number": lambda v: len(v) <= 32 and re.fullmatch(r"\d+(?:\.\d+)?", v) is not None,
    "letter": lambda v: re.fullmatch(r"[A-Za-z]{1,32}", v) is not None,
    "symbol": lambda v: len(v) <= 5 and not re.search(rf"[0-9A-Za-z{CJK}\s]", v),
    "character_string": lambda v: re.fullmatch(r"[\x21-\x7e]{1,32}", v) is not None,
    "time": _time,
    "date": _date,
    "amount": _amount,
    "phrase": lambda v: re.fullmatch(rf"[{CJK}]{{1,5}}", v) is not None,
    "name": _name,
    "phone_number": lambda v: re.fullmatch(r"[0-9+\-()]{1,17}", v) is not None,
    "car_number": _car,
    "const": lambda v: len(v) <= 20,
    "enum": lambda v: len(v) <= 20,
}


def key_type(key: str) -> str | None:
    prefix = re.sub(r"\d+$", "", key)
    if prefix in TYPES:
        return prefix
    if prefix.startswith("enum_"):
        return "enum"
    return None


def keys_of(content: str) -> list[tuple[str, str]]:
    """(key, label) of each ``{{key.DATA}}`` in a template's content, in order."""
    return list(_keys_of(content))


@functools.lru_cache(maxsize=256)
def _keys_of(content: str) -> tuple[tuple[str, str], ...]:
    found = []
    for line in content.splitlines():
        for m in KEY_RE.finditer(line):
            label = line[:m.start()].strip().rstrip(":：").strip()
            found.append((m.group(1), label))
    return tuple(found)


# --- the account's templates -------------------------------------------------------------------

APPS = ("oa", "mp")
KINDS = ("template", "subscribe")


def _clean(spec, index: int) -> dict:
    """A template as registered, checked; ControlError (400) naming what is wrong."""
    where = f"templates[{index}]"
    if not isinstance(spec, dict):
        raise ControlError(400, f"{where}: must be an object")
    template_id = spec.get("template_id")
    if not isinstance(template_id, str) or not 1 <= len(template_id) <= 128:
        raise ControlError(400, f"{where}.template_id: a string of 1-128 characters is required")
    app = spec.get("app", "oa")
    if app not in APPS:
        raise ControlError(400, f"{where}.app: one of {', '.join(APPS)}")
    kind = spec.get("type") or ("template" if app == "oa" else "subscribe")
    if kind not in KINDS or (app == "mp" and kind != "subscribe"):
        raise ControlError(400, f"{where}.type: 'template' (official account) or 'subscribe'")
    content = spec.get("content")
    keys = keys_of(content) if isinstance(content, str) else []
    if not keys:
        raise ControlError(400, f"{where}.content: no {{{{key.DATA}}}} in it")
    names = [k for k, _ in keys]
    if len(set(names)) != len(names):
        raise ControlError(400, f"{where}.content: a key appears twice")
    enums = spec.get("enums") or {}
    if not isinstance(enums, dict) or any(k not in names or not isinstance(v, list) for k, v in enums.items()):
        raise ControlError(400, f"{where}.enums: {{key of the template: [approved values]}}")
    return {"app": app, "template_id": template_id, "type": kind, "title": str(spec.get("title") or template_id),
            "content": content, "example": str(spec.get("example") or ""),
            "enums": json.dumps({k: [str(x) for x in v] for k, v in enums.items()}, ensure_ascii=False),
            "primary_industry": str(spec.get("primary_industry") or ""),
            "deputy_industry": str(spec.get("deputy_industry") or "")}


def register_templates(sb, specs: list, source: str = "control") -> list[dict]:
    rows = [_clean(spec, i) for i, spec in enumerate(specs)]
    with sb.store.tx() as conn:
        for row in rows:
            conn.execute(
                "INSERT OR REPLACE INTO templates (app, template_id, type, title, content, example, enums, "
                "primary_industry, deputy_industry, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row["app"], row["template_id"], row["type"], row["title"], row["content"], row["example"],
                 row["enums"], row["primary_industry"], row["deputy_industry"], source))
    return [template_json(r) for r in rows]


def seed(sb) -> None:
    """Register the templates of the ``templates`` setting (every start, and after a reset)."""
    if sb.config.get("templates"):
        register_templates(sb, sb.config["templates"], source="config")


def reset(sb) -> None:
    """Forget the templates registered through ``POST /sandbox/templates``; keep the setting's."""
    sb.store.run("DELETE FROM templates")
    seed(sb)


def template_json(row) -> dict:
    return {"template_id": row["template_id"], "app": row["app"], "type": row["type"], "title": row["title"],
            "content": row["content"], "example": row["example"], "keys": [k for k, _ in keys_of(row["content"])],
            "enums": json.loads(row["enums"]), "primary_industry": row["primary_industry"],
            "deputy_industry": row["deputy_industry"]}


def find(sb, app: str, kind: str, template_id) -> dict | None:
    if not isinstance(template_id, str) or not template_id:
        return None
    row = sb.store.one("SELECT * FROM templates WHERE app = ? AND type = ? AND template_id = ?",
                       app, kind, template_id)
    return template_json(row) if row else None


def require(sb, app: str, kind: str, template_id) -> dict:
    """The account's template with this id, or 40037 as WeChat answers an unknown one."""
    template = find(sb, app, kind, template_id)
    if template is None:
        raise WeChatError(40037)
    return template


def check_data(template: dict, data) -> None:
    """47003 unless ``data`` is exactly the template's keys, each value within its rule."""
    if not isinstance(data, dict) or not data:
        raise WeChatError(47003, "argument invalid! data is empty")
    keys = template["keys"]
    for key in keys:
        item = data.get(key)
        value = item.get("value") if isinstance(item, dict) else None
        if value is None or (isinstance(value, str) and value == ""):
            raise WeChatError(47003, f"argument invalid! data.{key}.value is empty")
    for key in data:
        if key not in keys:
            raise WeChatError(47003, f"argument invalid! data.{key}.value invalid")
    for key in keys:
        value = data[key]["value"]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise WeChatError(47003, f"argument invalid! data.{key}.value invalid")
        text = str(value)
        ktype = key_type(key)
        allowed = template["enums"].get(key)
        ok = not CONTROL.search(text)
        if ktype is not None:
            ok = ok and RULES[ktype](text)
        if allowed:
            ok = ok and text in allowed
        if not ok:
            raise WeChatError(47003, f"argument invalid! data.{key}.value invalid")


def rows(template: dict, data: dict) -> list[list[str]]:
    """[label, value] as the card shows them (the page)."""
    labels = dict(keys_of(template["content"]))
    return [[labels.get(k) or k, str(data[k]["value"])] for k in template["keys"] if k in data]


def register(bp: Blueprint, sb) -> None:
    seed(sb)

    @bp.route("/templates", methods=["GET"])
    def list_templates():
        found = sb.store.all("SELECT * FROM templates ORDER BY app, type, template_id")
        return jsonify({"templates": [template_json(r) for r in found]})

    @bp.route("/templates", methods=["POST"])
    def add_templates():
        data = request.get_json(silent=True)
        if isinstance(data, dict) and "templates" in data:
            data = data["templates"]
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list) or not data:
            raise ControlError(400, "give {\"templates\": [{template_id, app, title, content, …}]}")
        return jsonify({"templates": register_templates(sb, data)})

    @bp.route("/cgi-bin/template/get_all_private_template", methods=["GET"])
    @wechat_api(sb, "cgi-bin/template/get_all_private_template", app="oa")
    def get_all_private_template(appid):
        found = sb.store.all("SELECT * FROM templates WHERE app = 'oa' AND type = 'template' ORDER BY rowid")
        return jsonify({"template_list": [
            {"template_id": r["template_id"], "title": r["title"], "primary_industry": r["primary_industry"],
             "deputy_industry": r["deputy_industry"], "content": r["content"], "example": r["example"]}
            for r in found]})

    @bp.route("/wxaapi/newtmpl/gettemplate", methods=["GET"])
    @wechat_api(sb, "wxaapi/newtmpl/gettemplate")
    def get_subscribe_templates(appid):
        app = app_kind(sb, appid)
        found = sb.store.all("SELECT * FROM templates WHERE app = ? AND type = 'subscribe' ORDER BY rowid", app)
        items = []
        for r in found:
            item = {"priTmplId": r["template_id"], "title": r["title"], "content": r["content"],
                    "example": r["example"], "type": 2}
            enums = json.loads(r["enums"])
            if enums:
                item["keywordEnumValueList"] = [{"keywordCode": k, "enumValueList": v} for k, v in enums.items()]
            items.append(item)
        return jsonify({"errcode": 0, "errmsg": "ok", "data": items})
