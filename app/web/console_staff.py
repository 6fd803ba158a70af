"""Console pages for staff administration (admins only): the staff list, add and edit,
deactivate/reactivate, reset a password, lift a sign-in lock, and the WeChat binding QR.

Same blueprint as ``app.web.console`` (sign-in, CSRF and the console roles are checked there);
each view here also requires an admin. The rules live in ``app.services.staff_admin``; a
refused form is shown again with the messages and nothing changed.
"""
from __future__ import annotations

import functools

import requests
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select

from app import phones
from app.errors import DomainError, ValidationError
from app.extensions import db
from app.models import Crew, Role, Staff, WechatUser
from app.services import binding
from app.services import staff_admin
from app.services.actors import Actor
from app.web import auth
from app.text import clean_text
from app.web.console_base import bp, qr_svg
from wechat import qr as wechat_qr
from wechat.client import TokenRefreshBusy
from wechat.errors import WeChatException

PAGE_SIZE = 20
PROFILE_FIELDS = ("name", "phone", "role", "crew_id")


def admin_only(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not staff_admin.can_manage_staff(auth.current_staff()):
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def _actor() -> Actor:
    return Actor.of_staff(auth.current_staff())


def _redis():
    return current_app.extensions["redis"]


def _staff_or_404(staff_id: int) -> Staff:
    found = db.session.get(Staff, staff_id)
    if found is None:
        abort(404)
    return found


def _crews():
    return db.session.scalars(select(Crew).order_by(Crew.id)).all()


def _bound_wechat(staff: Staff) -> WechatUser | None:
    return db.session.scalar(select(WechatUser).where(WechatUser.staff_id == staff.id))


# --- the list -----------------------------------------------------------------------------------

@bp.route("/staff")
@admin_only
def staff_list():
    conds = []
    q = clean_text(request.args.get("q"))
    if q:
        like = f"%{q}%"
        fragment = phones.search_fragment(q)  # 024-8123 finds +862481234001
        conds.append(or_(Staff.username.ilike(like), Staff.name.ilike(like), Staff.phone.ilike(like),
                         *([Staff.phone.contains(fragment, autoescape=True)] if fragment else [])))
    role = request.args.get("role")
    if role in Role.ALL:
        conds.append(Staff.role == role)
    status = request.args.get("status")
    if status == "active":
        conds.append(Staff.active.is_(True))
    elif status == "inactive":
        conds.append(Staff.active.is_(False))
    page = max(request.args.get("page", 1, type=int), 1)
    total = db.session.scalar(select(func.count(Staff.id)).where(*conds)) or 0
    rows = db.session.scalars(select(Staff).where(*conds).order_by(Staff.active.desc(), Staff.id)
                              .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    ids = [s.id for s in rows]
    bound = set(db.session.scalars(select(WechatUser.staff_id).where(WechatUser.staff_id.in_(ids)))) if ids else set()
    crews = {c.id: c.name for c in _crews()}
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("console/staff.html", rows=rows, total=total, page=page,
                           pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1), args=args, crews=crews,
                           bound=bound, locked=staff_admin.locked_ids(rows, redis=_redis()))


# --- add and edit ---------------------------------------------------------------------------------

def _form_errors(exc: ValidationError) -> dict[str, str]:
    return {k: "；".join(v) for k, v in exc.fields.items()} or {"_": exc.message}


@bp.route("/staff/new")
@admin_only
def staff_new():
    return render_template("console/staff_form.html", s=None, form={}, errors={}, crews=_crews())


@bp.route("/staff", methods=["POST"])
@admin_only
def staff_create():
    form = request.form
    try:
        staff = staff_admin.create_staff(_actor(), username=form.get("username"), password=form.get("password"),
                                         **{k: form.get(k) for k in PROFILE_FIELDS})
    except ValidationError as exc:
        db.session.rollback()
        values = {k: v for k, v in form.items() if k not in ("password", "csrf_token")}
        return render_template("console/staff_form.html", s=None, form=values, errors=_form_errors(exc),
                               crews=_crews()), 400
    db.session.commit()
    flash(f"已添加员工 {staff.username}（{staff.name}）", "ok")
    return redirect(url_for("console.staff_edit", staff_id=staff.id))


def _edit_page(staff: Staff, *, form=None, errors=None, password_error=None, status=200):
    locked = bool(staff_admin.locked_ids([staff], redis=_redis()))
    return render_template("console/staff_form.html", s=staff, form=form or {}, errors=errors or {},
                           password_error=password_error, crews=_crews(), wechat=_bound_wechat(staff),
                           locked=locked, is_me=staff.id == auth.current_staff().id), status


@bp.route("/staff/<int:staff_id>")
@admin_only
def staff_edit(staff_id: int):
    return _edit_page(_staff_or_404(staff_id))


@bp.route("/staff/<int:staff_id>", methods=["POST"])
@admin_only
def staff_update(staff_id: int):
    staff = _staff_or_404(staff_id)
    form = request.form
    try:
        staff_admin.update_staff(_actor(), staff, **{k: form.get(k) for k in PROFILE_FIELDS})
    except ValidationError as exc:
        db.session.rollback()
        values = {k: form.get(k, "") for k in PROFILE_FIELDS}
        return _edit_page(staff, form=values, errors=_form_errors(exc), status=400)
    db.session.commit()
    flash("员工信息已保存", "ok")
    return redirect(url_for("console.staff_edit", staff_id=staff.id))


# --- account actions --------------------------------------------------------------------------------

def _account_action(staff: Staff, action, done: str, refused=None):
    """Run ``action()`` (one staff_admin call) and commit, then say ``done`` on the staff
    member's page. A refusal changes nothing and is shown: ``refused(message)`` renders it in
    place, else it is flashed."""
    try:
        action()
    except ValidationError as exc:
        db.session.rollback()
        if refused is not None:
            return refused(exc.message)
        flash(exc.message, "error")
        return redirect(url_for("console.staff_edit", staff_id=staff.id))
    db.session.commit()
    flash(done, "ok")
    return redirect(url_for("console.staff_edit", staff_id=staff.id))


@bp.route("/staff/<int:staff_id>/active", methods=["POST"])
@admin_only
def staff_set_active(staff_id: int):
    staff = _staff_or_404(staff_id)
    active = request.form.get("active") == "1"
    return _account_action(staff, lambda: staff_admin.set_active(_actor(), staff, active),
                           f"已{'启用' if active else '停用'}账号 {staff.username}")


@bp.route("/staff/<int:staff_id>/password", methods=["POST"])
@admin_only
def staff_password(staff_id: int):
    staff = _staff_or_404(staff_id)
    return _account_action(
        staff, lambda: staff_admin.reset_password(_actor(), staff, request.form.get("password"), redis=_redis()),
        f"已重置 {staff.username} 的密码，请当面或电话告知本人",
        refused=lambda message: _edit_page(staff, password_error=message, status=400))


@bp.route("/staff/<int:staff_id>/unlock", methods=["POST"])
@admin_only
def staff_unlock(staff_id: int):
    staff = _staff_or_404(staff_id)
    return _account_action(staff, lambda: staff_admin.unlock(_actor(), staff, redis=_redis()),
                           f"已解除 {staff.username} 的登录限制")


@bp.route("/staff/<int:staff_id>/unbind-wechat", methods=["POST"])
@admin_only
def staff_unbind_wechat(staff_id: int):
    staff = _staff_or_404(staff_id)
    if staff_admin.unbind_wechat(_actor(), staff):
        db.session.commit()
        flash(f"已解除 {staff.username} 的微信绑定，该微信不再享有员工权限", "ok")
    else:
        flash(f"{staff.username} 没有绑定微信", "error")
    return redirect(url_for("console.staff_edit", staff_id=staff_id))


@bp.route("/staff/<int:staff_id>/bind-qr", methods=["POST"])
@admin_only
def staff_bind_qr(staff_id: int):
    """A fresh one-time code, committed first; then WeChat's temporary QR carrying it."""
    staff = _staff_or_404(staff_id)
    try:
        code = binding.issue_staff_bind_code(staff)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("console.staff_edit", staff_id=staff_id))
    db.session.commit()
    scene = wechat_qr.staff_scene(code.code)
    qr_url, wechat_error = None, None
    try:
        qr_url = wechat_qr.create_staff_qr(code.code)["url"]
    except (WeChatException, requests.RequestException, TokenRefreshBusy, KeyError) as exc:
        current_app.logger.warning("staff bind QR: WeChat qrcode/create failed: %s", exc)
        wechat_error = "微信接口暂时不可用，未能生成公众号二维码；下方为仅含场景值的本地二维码，微信扫码无法绑定，可稍后重试。"
    return render_template("console/staff_bind_qr.html", s=staff, code=code, scene=scene,
                           qr=qr_svg(qr_url or scene), wechat_error=wechat_error)
