"""Login with the mini-program's wx.login code, tokens that can be ended, and who is asking.

``POST /api/v1/auth/login {"code"}`` exchanges the code through jscode2session, finds or
creates the WeChat user (joined to their official-account row by unionid when WeChat gives
one) and opens a login family (``app.services.sessions``). It answers an access token (Bearer,
``TOKEN_TTL``) and a refresh token, both signed with ``SECRET_KEY`` (itsdangerous) and naming
the family. ``POST /api/v1/auth/refresh {"refresh_token"}`` trades the refresh token for a new
pair and retires it; a retired refresh token presented again revokes the family. A refresh
token unused for ``REFRESH_TTL`` expires, and no family outlives
``sessions.API_FAMILY_LIFETIME``. ``POST /api/v1/auth/logout`` ends the family. Every request
checks the family, and roles are read from the database on every request, so a logout, a
deactivated staff member or an unbound WeChat loses access at once.
"""
from __future__ import annotations

import functools

import requests
from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wechatpy.exceptions import WeChatClientException

from app import clock
from app.errors import PermissionDeniedError, ValidationError
from app.extensions import db
from app.models import ApiSession, Role, Staff, WechatUser
from app.services import identity, sessions
from app.errors import TooManyAttemptsError
from mobile_api.common import ApiBlueprint, ServiceUnavailableError, UnauthorizedError, documented
from mobile_api.schemas import LinkArgs, LoginArgs, LoginSchema, RefreshArgs
from wechat import client as wechat_client

TOKEN_SALT = "mobile-api-token"
REFRESH_SALT = "mobile-api-refresh"
TOKEN_TTL = 2 * 3600            # seconds an access token opens the API
REFRESH_TTL = 7 * 24 * 3600     # seconds a refresh token can be traded for a new pair
CREW_ROLES = (Role.CREW_MEMBER, Role.CREW_LEAD)

bp = ApiBlueprint("mobile_auth", __name__, url_prefix="/api/v1/auth",
                  description="登录：wx.login 的 code 换取令牌（Authorization: Bearer <token>）；"
                              "refresh_token 换新令牌（旧的随即作废），logout 退出登录")


class _ClockSigner(TimestampSigner):
    """Token ages are read from the app's clock (app/clock.py), like every other time."""

    def get_timestamp(self) -> int:
        return int(clock.utcnow().timestamp())


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt, signer=_ClockSigner)


def access_token(family: ApiSession) -> str:
    # "g" only tells which refresh issued it: an access token stays good for its TTL after a
    # refresh, so requests already in flight are not refused.
    return _serializer(TOKEN_SALT).dumps({"s": family.id, "g": family.generation})


def refresh_token(family: ApiSession) -> str:
    return _serializer(REFRESH_SALT).dumps({"s": family.id, "g": family.generation})


def issue_token(user: WechatUser) -> str:
    """Open a login family for ``user``, commit it and answer its access token (for scripts and
    tests; the views open families themselves and commit once, at their boundary)."""
    family = sessions.open_api_session(user)
    db.session.commit()
    return access_token(family)


def _load(token: str, salt: str, max_age: int, *fields: str) -> dict:
    try:
        data = _serializer(salt).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise UnauthorizedError("登录已过期，请重新登录", code="token_expired") from exc
    except BadSignature as exc:
        raise UnauthorizedError("登录凭证无效，请重新登录", code="token_invalid") from exc
    if not isinstance(data, dict) or not all(isinstance(data.get(f), int) for f in fields):
        # Also a token from before login families (it names no family): log in again.
        raise UnauthorizedError("登录凭证无效，请重新登录", code="token_invalid")
    return data


def _authenticate(token: str) -> tuple[WechatUser, ApiSession]:
    """The person an access token speaks for, while its login family is live."""
    family_id = _load(token, TOKEN_SALT, TOKEN_TTL, "s")["s"]
    family, user = sessions.api_session_user(family_id)
    return user, family


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


def current_session() -> ApiSession:
    return g.api_session


def login_required(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g.api_user, g.api_session = _authenticate(_bearer())
        return func(*args, **kwargs)

    return wrapper


def staff_required(*roles: str):
    """The caller's WeChat is bound to an active staff member with one of ``roles``."""

    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            user, family = _authenticate(_bearer())
            staff = user.staff
            if staff is None or not staff.active or staff.role not in roles:
                raise PermissionDeniedError("仅限维修人员使用", code="staff_only")
            g.api_user, g.api_session, g.api_staff = user, family, staff
            return func(*args, **kwargs)

        return wrapper

    return decorator


def _session_for(code: str) -> dict:
    try:
        return wechat_client.mini_program().wxa.code_to_session(code)
    except WeChatClientException as exc:
        if exc.errcode in (*wechat_client.BAD_LOGIN_CODE, 40226):   # or a high-risk user
            raise UnauthorizedError("登录凭证无效或已使用，请重新登录", code="invalid_code") from exc
        if exc.errcode == 41008:   # WeChat saw no code: the caller's mistake, not an outage
            raise ValidationError("缺少登录凭证 code", code="invalid_code", fields={"code": ["必填"]}) from exc
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


def _answer(user: WechatUser, family: ApiSession) -> dict:
    family_left = int((family.expires_at - clock.utcnow()).total_seconds())
    return {"token": access_token(family), "token_type": "Bearer", "expires_in": TOKEN_TTL,
            "refresh_token": refresh_token(family), "refresh_expires_in": max(0, min(REFRESH_TTL, family_left)),
            "roles": roles_of(user), "user": user}


@bp.route("/login", methods=["POST"])
@bp.arguments(LoginArgs)
@bp.response(200, LoginSchema)
@documented(bp, 400, 401, 429, 503, auth=False)
def login(args):
    """wx.login 的 code 换取令牌和角色"""
    session = _session_for(args["code"])
    openid = session.get("openid")
    if not openid:
        raise ServiceUnavailableError("微信服务暂时不可用，请稍后再试")
    unionid = session.get("unionid")
    try:
        user = _find_or_create(openid, unionid)
        family = sessions.open_api_session(user)
        db.session.commit()
    except IntegrityError:   # the same user logging in twice at once: the other one won
        db.session.rollback()
        user = db.session.scalar(select(WechatUser).where(WechatUser.mp_openid == openid))
        if user is None:
            raise ValidationError("登录失败，请重试", code="login_conflict")
        family = sessions.open_api_session(user)
        db.session.commit()
    return _answer(user, family)


@bp.route("/refresh", methods=["POST"])
@bp.arguments(RefreshArgs)
@bp.response(200, LoginSchema)
@documented(bp, 400, 401, auth=False)
def refresh(args):
    """用 refresh_token 换取新的令牌和 refresh_token（旧 refresh_token 随即作废）

    每个 refresh_token 只能用一次；已用过的再次出现，视为被盗用，本次登录的所有令牌一并作废（401
    refresh_token_reused），需重新登录。refresh_token 7天未用即过期；一次登录最长30天，之后须重新登录。"""
    if not args.get("refresh_token"):
        raise UnauthorizedError("请提供 refresh_token，或重新登录", code="login_required")
    data = _load(args["refresh_token"], REFRESH_SALT, REFRESH_TTL, "s", "g")
    try:
        family = sessions.rotate_api_session(data["s"], data["g"])
    except sessions.RefreshReusedError:
        db.session.commit()   # the family stays revoked, whatever we answer
        raise
    user = db.session.get(WechatUser, family.wechat_user_id)
    db.session.commit()
    return _answer(user, family)


@bp.route("/logout", methods=["POST"])
@login_required
@bp.response(204)
@documented(bp)
def logout():
    """退出登录：本次登录的令牌和 refresh_token 立即失效"""
    sessions.revoke_api_session(current_session(), "logout")
    db.session.commit()
    return None


@bp.route("/link", methods=["POST"])
@login_required
@bp.arguments(LinkArgs)
@bp.response(200, LoginSchema)
@documented(bp, 400, 429)
def link(args):
    """输入公众号给出的关联码，把公众号与小程序合为一个账号（无 unionid 时使用）

    合并后房屋绑定、员工身份和工单两边通用；返回新令牌，原来的令牌随即失效。"""
    person = identity.link_with_code(current_user(), args["code"], current_app.extensions["redis"])
    sessions.revoke_api_session(current_session(), "linked")
    family = sessions.open_api_session(person)
    db.session.commit()
    return _answer(person, family)
