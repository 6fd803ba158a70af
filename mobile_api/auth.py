"""Login with the mini-program's wx.login code, signed expiring tokens, and who is asking.

``POST /api/v1/auth/login {"code"}`` exchanges the code through jscode2session, finds or
creates the WeChat user (joined to their official-account row by unionid when WeChat gives
one) and answers a bearer token signed with ``SECRET_KEY`` (itsdangerous), valid
``TOKEN_TTL`` seconds. ``POST /api/v1/auth/refresh`` trades a token up to ``REFRESH_TTL``
old for a new one. Roles are read from the database on every request, so a deactivated
staff member loses their rights at once.
"""
from __future__ import annotations

import functools

import requests
from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wechatpy.exceptions import WeChatClientException

from app.errors import PermissionDeniedError, ValidationError
from app.extensions import db
from app.models import Role, Staff, WechatUser
from app.services import identity
from app.errors import TooManyAttemptsError
from mobile_api.common import ApiBlueprint, ServiceUnavailableError, UnauthorizedError, documented
from mobile_api.schemas import LinkArgs, LoginArgs, LoginSchema
from wechat import client as wechat_client

TOKEN_SALT = "mobile-api-token"
TOKEN_TTL = 2 * 3600            # seconds a token opens the API
REFRESH_TTL = 7 * 24 * 3600     # seconds a token can still be traded for a new one
CREW_ROLES = (Role.CREW_MEMBER, Role.CREW_LEAD)

bp = ApiBlueprint("mobile_auth", __name__, url_prefix="/api/v1/auth",
                  description="登录：wx.login 的 code 换取令牌（Authorization: Bearer <token>）")


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


def issue_token(user: WechatUser) -> str:
    return _serializer().dumps({"u": user.id})


def _user_from_token(token: str, max_age: int) -> WechatUser:
    try:
        data = _serializer().loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise UnauthorizedError("登录已过期，请重新登录", code="token_expired") from exc
    except BadSignature as exc:
        raise UnauthorizedError("登录凭证无效，请重新登录", code="token_invalid") from exc
    user_id = data.get("u") if isinstance(data, dict) else None
    user = db.session.get(WechatUser, user_id) if isinstance(user_id, int) else None
    if user is None and isinstance(user_id, int):   # joined with their official-account self since
        survivor = identity.merged_into(user_id)
        user = db.session.get(WechatUser, survivor) if survivor else None
    if user is None:
        raise UnauthorizedError("登录凭证无效，请重新登录", code="token_invalid")
    return user


def _bearer() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("请先登录", code="login_required")
    return token.strip()


def roles_of(user: WechatUser) -> list[str]:
    """Every WeChat user is a resident; a bound, active staff member also has their role."""
    roles = ["resident"]
    if user.staff is not None and user.staff.active:
        roles.append(user.staff.role)
        if user.staff.role in CREW_ROLES:
            roles.append("crew")
    return roles


def current_user() -> WechatUser:
    return g.api_user


def current_staff() -> Staff:
    return g.api_staff


def login_required(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g.api_user = _user_from_token(_bearer(), TOKEN_TTL)
        return func(*args, **kwargs)

    return wrapper


def staff_required(*roles: str):
    """The caller's WeChat is bound to an active staff member with one of ``roles``."""

    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            user = _user_from_token(_bearer(), TOKEN_TTL)
            staff = user.staff
            if staff is None or not staff.active or staff.role not in roles:
                raise PermissionDeniedError("仅限维修人员使用", code="staff_only")
            g.api_user, g.api_staff = user, staff
            return func(*args, **kwargs)

        return wrapper

    return decorator


def _session_for(code: str) -> dict:
    try:
        return wechat_client.mini_program().wxa.code_to_session(code)
    except WeChatClientException as exc:
        if exc.errcode in (40029, 40163, 40226):
            raise UnauthorizedError("登录凭证无效或已使用，请重新登录", code="invalid_code") from exc
        if exc.errcode == 45011:
            raise TooManyAttemptsError("登录过于频繁，请稍后再试") from exc
        raise ServiceUnavailableError("微信服务暂时不可用，请稍后再试") from exc
    except requests.RequestException as exc:
        raise ServiceUnavailableError("微信服务暂时不可用，请稍后再试") from exc


def _find_or_create(openid: str, unionid: str | None) -> WechatUser:
    """The person behind this mini-program openid: their own row, or — when WeChat gives a
    unionid already seen in the official account — that row, joined (app.services.identity)."""
    user = db.session.scalar(select(WechatUser).where(WechatUser.mp_openid == openid))
    if user is None:
        user = WechatUser(mp_openid=openid)
        db.session.add(user)
        db.session.flush()
    return identity.attach_unionid(user, unionid)


def _login_answer(user: WechatUser) -> dict:
    return {"token": issue_token(user), "token_type": "Bearer", "expires_in": TOKEN_TTL,
            "roles": roles_of(user), "user": user}


@bp.route("/login", methods=["POST"])
@bp.arguments(LoginArgs)
@bp.response(200, LoginSchema)
@documented(bp, 400, 429, 503, auth=False)
def login(args):
    """wx.login 的 code 换取令牌和角色"""
    session = _session_for(args["code"])
    openid = session.get("openid")
    if not openid:
        raise ServiceUnavailableError("微信服务暂时不可用，请稍后再试")
    unionid = session.get("unionid")
    try:
        user = _find_or_create(openid, unionid)
        db.session.commit()
    except IntegrityError:   # the same user logging in twice at once: the other one won
        db.session.rollback()
        user = db.session.scalar(select(WechatUser).where(WechatUser.mp_openid == openid))
        if user is None:
            raise ValidationError("登录失败，请重试", code="login_conflict")
    return _login_answer(user)


@bp.route("/refresh", methods=["POST"])
@bp.response(200, LoginSchema)
@documented(bp)
def refresh():
    """用仍在刷新期内（7天）的令牌换取新令牌"""
    user = _user_from_token(_bearer(), REFRESH_TTL)
    return _login_answer(user)


@bp.route("/link", methods=["POST"])
@login_required
@bp.arguments(LinkArgs)
@bp.response(200, LoginSchema)
@documented(bp, 400)
def link(args):
    """输入公众号给出的关联码，把公众号与小程序合为一个账号（无 unionid 时使用）

    合并后房屋绑定、员工身份和工单两边通用；返回新令牌（旧令牌可能失效）。"""
    person = identity.link_with_code(current_user(), args["code"], current_app.extensions["redis"])
    db.session.commit()
    return _login_answer(person)
