"""The official account's web pages (微信营业厅), opened inside WeChat's browser.

Root-level pages for residents — ``/t`` and ``/t/<工单号>`` (tickets), ``/report`` (报修),
``/outages`` and ``/outages/<id>`` (停热), ``/announcements/<id>`` (公告), ``/me`` (我的) — and,
in their own modules, ``/pay…`` (``pay.py``) and the crews' ``/mp/task…`` (``crew.py``).
Sign-in is WeChat's web authorisation (``signin.py``: ``/h5/login``, ``/h5/oauth``), and
``/MP_verify_<code>.txt`` is WeChat's domain-verification file.

For a new module (``app/web/h5/core.py``):
- ``bp = h5_blueprint("h5_pay", __name__)`` — CSRF on every POST (form field ``csrf_token``,
  ``{{ csrf_field() }}`` in templates, or header ``X-CSRF-Token`` with ``csrf_token()``),
  Chinese error pages in the pages' layout, template globals ``me`` (the WechatUser),
  ``nav``, ``sandbox`` (True unless the app talks to the real WeChat);
- ``@h5_login_required`` under the route decorator: no sign-in → through WeChat's
  authorisation and back to the same page;
- ``current_wechat_user()`` → the signed-in ``WechatUser`` (or None); ``current_crew_staff()``
  → their active crew ``Staff`` (crew member or lead), or None;
- ``h5_error(status, message, again=None)`` → a Chinese page (``return h5_error(403, "…")``);
- templates extend ``h5/base.html`` (blocks ``title``, ``main``, ``nav``, ``wechat_scripts``
  — the sandbox's WeixinJSBridge stand-in goes there, ``scripts``); styles in
  ``static/css/h5.css``; the bottom nav lights up for blueprints ``h5_pay``, ``h5_report``,
  ``h5_tickets``, ``h5_me``.
Who may see what is decided in ``app.services.access`` (``ticket_of``, ``payment_of``,
``visible_tasks``/``task_of``/``open_tasks`` for crews …), shared with the API and the chat.
Register a new module's blueprint in ``register`` below.
"""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from app.web.h5.crew import bp as crew_bp
    from app.web.h5.me import bp as me_bp
    from app.web.h5.notices import announcements_bp, bp as outages_bp
    from app.web.h5.pay import bp as pay_bp
    from app.web.h5.signin import bp as signin_bp
    from app.web.h5.tickets import bp as tickets_bp, report_bp

    for bp in (signin_bp, me_bp, tickets_bp, report_bp, outages_bp, announcements_bp, pay_bp, crew_bp):
        app.register_blueprint(bp)
