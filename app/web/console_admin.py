"""Admin pages of the console (管理): the SLA table, evidence rules, run-time settings and the
personal-data access log. Only admins see them in the menu; anyone else gets 403 on the URLs
(``admin_only``, the same check as the staff pages). Same blueprint as ``app.web.console``.
"""
from __future__ import annotations

from flask import current_app, render_template, request

from app.errors import ValidationError
from app.models import AccessAction, Priority, TicketCategory, TicketType
from app.services import policies, privacy, run_settings
from app.services.sla import ANY_TYPE
from app.web.console_base import bp, done, tz
from app.web.console_staff import admin_only

LOG_PAGE = 50
MAX_RATE = run_settings.MAX_BROADCAST_RATE
# Settings read from the environment at start (shown, changed by the operator and a restart).
START_SETTINGS = [
    ("FAQ_CONFIDENCE_THRESHOLD", "知识库自动回复的最低匹配度（低于此值转人工）"),
    ("CLUSTER_THRESHOLD", "疑似停热：同一换热站/小区报“不热”的起数"),
    ("CLUSTER_WINDOW_MINUTES", "疑似停热：统计时间窗（分钟）"),
    ("OUTAGE_STILL_COLD_HOURS", "停热恢复后可反馈“还冷”的小时数"),
    ("REMINDER_LEAD_MINUTES", "时限到期前多少分钟提醒"),
    ("ESCALATE_AFTER_MINUTES", "超时多少分钟后催办升级"),
    ("ARREARS_SEND_HOURS", "催缴消息发送时段（时）"),
    ("BRIDGE_WORKING_HOURS", "人工坐席工作时间（之外的未接来电生成回拨任务）"),
    ("LATE_FEE_BP_PER_DAY", "滞纳金（万分之几/天）"),
]


def _type_label(ticket_type: str) -> str:
    return "其他类型（默认）" if ticket_type == ANY_TYPE else TicketType.LABELS.get(ticket_type, ticket_type)


# --- SLA table ------------------------------------------------------------------------------------

@bp.route("/admin/sla")
@admin_only
def sla_page():
    return render_template("console/admin_sla.html", rows=policies.sla_rows(), type_label=_type_label,
                           priorities=Priority.LABELS)


@bp.route("/admin/sla/<int:policy_id>", methods=["POST"])
@admin_only
def sla_update(policy_id: int):
    row = policies.update_sla(policy_id, respond_minutes=request.form.get("respond_minutes"),
                              finish_minutes=request.form.get("finish_minutes"))
    return done(f"已保存：{_type_label(row.ticket_type)} / {Priority.LABELS.get(row.priority, row.priority)}"
                "（新工单起生效）", "console.sla_page")


# --- evidence rules ---------------------------------------------------------------------------------

@bp.route("/admin/evidence")
@admin_only
def evidence_page():
    return render_template("console/admin_evidence.html", rows=policies.evidence_rows(),
                           categories=TicketCategory.LABELS)


@bp.route("/admin/evidence", methods=["POST"])
@admin_only
def evidence_save():
    rule = policies.save_evidence_rule(request.form.get("category", ""), request.form.get("min_photos"))
    return done(f"已保存：{TicketCategory.LABELS[rule.category]}须上传{rule.min_photos}张照片", "console.evidence_page")


@bp.route("/admin/evidence/<int:rule_id>/delete", methods=["POST"])
@admin_only
def evidence_delete(rule_id: int):
    rule = policies.delete_evidence_rule(rule_id)
    return done(f"已删除：{TicketCategory.LABELS.get(rule.category, rule.category)}的取证要求", "console.evidence_page")


# --- settings ---------------------------------------------------------------------------------------

@bp.route("/admin/settings")
@admin_only
def settings_page():
    fixed = [(key, label, current_app.config.get(key)) for key, label in START_SETTINGS]
    return render_template("console/admin_settings.html", rate=run_settings.broadcast_rate(),
                           default_rate=run_settings.default_broadcast_rate(), fixed=fixed,
                           max_rate=MAX_RATE)


@bp.route("/admin/settings", methods=["POST"])
@admin_only
def settings_update():
    if request.form.get("reset"):
        run_settings.set_broadcast_rate(None)
        return done("群发速度已恢复为默认值", "console.settings_page")
    raw = (request.form.get("rate") or "").strip()
    try:
        rate = int(raw)
        if not 1 <= rate <= MAX_RATE:
            raise ValueError
    except ValueError:
        raise ValidationError("群发速度有误", fields={"rate": [f"请填写1到{MAX_RATE}之间的整数（条/分钟）"]})
    run_settings.set_broadcast_rate(rate)
    return done(f"群发速度已改为每分钟{rate}条，正在发送的公告随即生效", "console.settings_page")


# --- personal-data access log -----------------------------------------------------------------------

@bp.route("/admin/access-log")
@admin_only
def access_log_page():
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    page = max(request.args.get("page", 1, type=int), 1)
    try:
        f = privacy.parse_filter(request.args)
        errors = {}
    except ValidationError as exc:
        f, errors = privacy.AccessFilter(), exc.fields
    rows, total = privacy.access_log(f, tz=tz(), page=page, per_page=LOG_PAGE)
    return render_template("console/admin_access_log.html", rows=rows, total=total, page=page,
                           pages=max((total + LOG_PAGE - 1) // LOG_PAGE, 1), args=args, errors=errors,
                           actions=AccessAction.LABELS)
