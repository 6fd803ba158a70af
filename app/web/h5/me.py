"""我的 (/me): the households bound to this WeChat, binding another (the same service and
attempt limits as the chat and the mini-program), unbinding after a confirmation."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from app.errors import DomainError
from app.extensions import db
from app.services import access, binding
from app.web.h5.core import current_wechat_user, h5_blueprint, h5_login_required

bp = h5_blueprint("h5_me", __name__)


@bp.route("/me")
@h5_login_required
def me():
    user = current_wechat_user()
    return render_template("h5/me.html", households=binding.bound_households(user),
                           max_households=binding.MAX_HOUSEHOLDS_PER_USER)


@bp.route("/me/bind", methods=["GET", "POST"])
@h5_login_required
def bind():
    form = {key: (request.form.get(key) or "").strip() for key in ("account_no", "owner_name", "phone_last4")}
    if request.method == "POST":
        user = current_wechat_user()
        try:
            row = binding.bind_household(user, form["account_no"], owner_name=form["owner_name"] or None,
                                         phone_last4=form["phone_last4"] or None,
                                         attempts=binding.bind_attempts(current_app.extensions["redis"]))
            db.session.commit()
        except DomainError as exc:   # wrong proof, too many attempts, too many households
            db.session.rollback()
            return render_template("h5/bind.html", form=form, error=exc), exc.status
        flash(f"已绑定户号 {row.household.account_no}", "success")
        return redirect(url_for("h5_me.me"), code=303)
    return render_template("h5/bind.html", form=form)


@bp.route("/me/households/<int(max=2147483647):household_id>/unbind", methods=["GET", "POST"])
@h5_login_required
def unbind(household_id: int):
    user = current_wechat_user()
    household = access.household_of(user, household_id)
    if request.method == "POST":
        binding.unbind_household(user, household.id)
        db.session.commit()
        flash(f"已解除绑定户号 {household.account_no}", "success")
        return redirect(url_for("h5_me.me"), code=303)
    return render_template("h5/unbind.html", household=household)
