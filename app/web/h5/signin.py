"""WeChat web sign-in for the official account's pages, and WeChat's domain-verification file.

``/h5/login?next=<page>`` starts WeChat's silent authorisation (snsapi_base; in the sandbox,
``&sandbox_openid=`` consents at once as that user, without it the sandbox asks whom to act
as); WeChat sends the browser back to ``/h5/oauth?code=&state=``, where the code becomes the
openid, the openid the person (``identity.oa_user``: the same row the official account's chat
and, once joined, the mini-program use; like the chat, a sign-in asks WeChat once a day for
the person's unionid to join them with their mini-program row), and the browser goes on to ``next`` (a same-site path,
``app.web.redirects.safe_next``). A forged, used or expired code shows a page and signs nobody in.
"""
from __future__ import annotations

from flask import abort, current_app, redirect, request, session, url_for
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.links import public_url
from app.queue import enqueue
from app.services import identity, staff_auth
from app.web.h5.core import HOME_ENDPOINT, h5_blueprint, h5_error, sign_in_wechat, sign_out_wechat
from app.web.redirects import safe_next
from wechat.client import BAD_LOGIN_CODE
from wechat.web_oauth import OAuthError, authorize_url, new_state, openid_for_code

bp = h5_blueprint("h5", __name__)

STATE_KEY = "h5_oauth_state"
NEXT_KEY = "h5_oauth_next"
BAD_CODE = (*BAD_LOGIN_CODE, 41008)   # or missing


@bp.route("/h5/login")
def login():
    state = new_state()
    session[STATE_KEY] = state
    session[NEXT_KEY] = safe_next(request.args.get("next"))
    return redirect(authorize_url(public_url(url_for("h5.oauth_callback")), state,
                                  sandbox_openid=request.args.get("sandbox_openid")))


@bp.route("/h5/oauth")
def oauth_callback():
    state, code = request.args.get("state"), request.args.get("code")
    expected = session.pop(STATE_KEY, None)
    next_url = safe_next(session.pop(NEXT_KEY, None)) or url_for(HOME_ENDPOINT)
    again = url_for("h5.login", next=next_url)
    if not code or not staff_auth.csrf_matches(expected, state):
        return h5_error(400, "授权已失效，请重新打开页面", again=again, title="授权失效")
    try:
        openid = openid_for_code(code)
    except OAuthError as exc:
        if exc.errcode in BAD_CODE:
            return h5_error(400, "授权码无效或已过期，请重新打开页面", again=again, title="授权失效")
        current_app.logger.warning("web sign-in: code exchange failed: %s", exc)
        return h5_error(502, "微信授权服务暂时不可用，请稍后再试", again=again)
    try:
        user = identity.oa_user(openid)
        sign_in_wechat(user)
    except IntegrityError:   # the same person's first visit twice at once: the other one made the row
        db.session.rollback()
        user = identity.oa_user(openid)
        sign_in_wechat(user)
    _learn_unionid(user)
    return redirect(next_url)


def _learn_unionid(user) -> None:
    """As the chat does: once a day, ask WeChat for a signed-in person's unionid, so someone who
    only uses these pages is joined with their mini-program self (``jobs.identity``)."""
    if user.unionid is not None:
        return
    try:
        if identity.claim_unionid_lookup(current_app.extensions["redis"], user.oa_openid):
            enqueue("jobs.identity.learn_unionid", user.oa_openid)
    except RedisError:   # best effort, like the chat's: the daily job links them later
        current_app.logger.warning("web sign-in: could not ask for the unionid of %s", user.oa_openid, exc_info=True)


@bp.route("/h5/logout", methods=["POST"])
def logout():
    sign_out_wechat()
    return h5_error(200, "已退出登录", title="已退出")


@bp.route("/MP_verify_<code>.txt")
def mp_verify(code: str):
    """WeChat's domain-verification file (WECHAT_MP_VERIFY_FILE); any other name is a 404."""
    expected = current_app.config.get("WECHAT_MP_VERIFY_CODE")
    if not expected or code != expected:
        abort(404)
    return expected, 200, {"Content-Type": "text/plain; charset=utf-8"}
