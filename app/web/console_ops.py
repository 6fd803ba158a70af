"""Console pages beyond tickets: announcements, outages, the FAQ, bridge dead letters,
failed jobs and reports. Same rules as ``app.web.console`` (same blueprint)."""
from __future__ import annotations

import json
import re

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import func, or_, select

from app.bridge.ingest import list_dead_letters, replay  # the bridge's boundary (replay commits its outcome)
from app.errors import ValidationError
from app.extensions import db
from app.http_errors import error_response
from app.models import (
    Announcement, AnnouncementStatus, Audience, ClusterStatus, Community, DeliveryStatus, District,
    FaqEntry,
    Household, Outage, OutageArea, OutageCluster, OutageKind, OutageStatus, Station, Ticket, utcnow,
)
from app.queue import QUEUES, get_queue
from app.services import announcements as announcement_service
from app.services import clusters as cluster_service
from app.services import notices as notice_service
from app.services import outage_linking
from app.services import outages as outage_service
from app.services import reports as report_service
from app.services.billing import local_today
from app.web import auth
from app.web.console_base import bp, done, parse_local_datetime
from wechat.notify import reason_text

UNKNOWN_LIST_LIMIT = 200
ANN_LABELS = {
    AnnouncementStatus.DRAFT: "草稿", AnnouncementStatus.SCHEDULED: "定时待发", AnnouncementStatus.SENDING: "发送中",
    AnnouncementStatus.PAUSED: "已暂停", AnnouncementStatus.HALTED: "已中止（配额用尽）",
    AnnouncementStatus.DONE: "已发送完毕", AnnouncementStatus.CANCELLED: "已撤回",
}


CHANNEL_LABELS = {"subscribe": "订阅消息", "custom": "客服消息", "template": "模板消息"}
OUTCOME_LABELS = {DeliveryStatus.FAILED: "失败", DeliveryStatus.SKIPPED: "跳过", DeliveryStatus.UNKNOWN: "结果未知"}
# The phone bridge's endpoints and answers (app/bridge/ingest.py), as staff read them.
BRIDGE_ENDPOINTS = {"tickets": "工单", "calls": "来电"}
BRIDGE_RESULTS = {"created": "已新建工单", "updated": "已更新工单", "unchanged": "内容无变化", "stale": "数据较旧，未覆盖",
                  "recorded": "已记录来电", "duplicate": "重复推送，已忽略"}
_REASON = re.compile(r"^(?P<status>\d{3}) (?P<code>[a-z_]+): (?P<message>.*?)(?P<rest> [\[{(].*)?$", re.S)


def dead_letter_reason(reason: str | None) -> tuple[str, str]:
    """(the Chinese message, the technical rest) of a stored "400 invalid_json: 请求内容… (detail)"."""
    found = _REASON.match(reason or "")
    if not found:
        return reason or "", ""
    return found["message"].strip(), f"{found['status']} {found['code']}{found['rest'] or ''}".strip()


def replay_text(result: str | None) -> tuple[str, bool]:
    """(what a replay came to, in Chinese; whether it worked) of "ok: 201 created" / "failed: …"."""
    if not result:
        return "", False
    if result.startswith("ok:"):
        words = result[3:].split()
        outcome = BRIDGE_RESULTS.get(words[1], words[1]) if len(words) > 1 else ""
        return "重放成功" + (f"：{outcome}" if outcome else "") + ("（已修正数据）" if "corrected" in result else ""), True
    return "重放失败：" + dead_letter_reason(result.removeprefix("failed:").strip())[0], False


def status_label(p: dict) -> str:
    """The announcement's status for staff. A finished broadcast says "全部发送成功" only when
    every recipient got it; otherwise it says how many were sent, failed, skipped, unknown."""
    if p["status"] != AnnouncementStatus.DONE:
        return ANN_LABELS.get(p["status"], p["status"])
    if p["total"] == 0:
        return "发送结束：没有符合条件的接收人"
    if p["sent"] == p["total"]:
        return f"全部发送成功（{p['total']}人）"
    parts = [f"成功{p['sent']}人"] + [f"{label}{p[key]}人" for key, label in
                                     (("failed", "失败"), ("skipped", "跳过"), ("unknown", "结果未知")) if p.get(key)]
    return "发送结束：" + "，".join(parts)


def result_tone(p: dict) -> str:
    """The colour of the result: green only when everyone got it; red with failures."""
    if p.get("failed") or p.get("unknown"):
        return "bad"
    if p.get("skipped"):
        return "warn"
    if p["status"] == AnnouncementStatus.DONE and p["sent"] == p["total"] and p["total"]:
        return "ok"
    return ""


def percent_done(p: dict) -> int:
    """Share of recipients with a known outcome; never 100 while some are unknown."""
    if p["total"] == 0:
        return 100 if p["status"] == AnnouncementStatus.DONE else 0
    known = p["sent"] + p["failed"] + p["skipped"]
    value = round(known * 100 / p["total"])
    return min(value, 99) if p.get("unknown") or p.get("pending") or p.get("sending") else value



# --- the area picker (stations, communities, buildings) ------------------------------------------

def area_options() -> dict:
    stations = [{"id": s.id, "name": s.name} for s in db.session.scalars(select(Station).order_by(Station.name))]
    districts = dict(db.session.execute(select(District.id, District.name)).all())
    buildings: dict[int, list[str]] = {}
    for community_id, building in db.session.execute(
        select(Household.community_id, Household.building).distinct()
    ).all():
        buildings.setdefault(community_id, []).append(building)
    communities = [{
        "id": c.id, "name": c.name, "district": districts.get(c.district_id, ""),
        "buildings": sorted(buildings.get(c.id, []), key=lambda b: (len(b), b)),
    } for c in db.session.scalars(select(Community).order_by(Community.district_id, Community.name))]
    return {"stations": stations, "communities": communities}


def _areas_from_json(raw: str | None) -> list[dict]:
    """The picker's hidden field: [{"station_id"} | {"community_id", "building"?}, ...]."""
    try:
        areas = json.loads(raw or "[]")
    except ValueError:
        raise ValidationError("停热范围格式有误", fields={"areas": ["格式有误"]})
    if not isinstance(areas, list) or not all(isinstance(a, dict) for a in areas):
        raise ValidationError("停热范围格式有误", fields={"areas": ["格式有误"]})
    clean = []
    for a in areas:
        item = {}
        for key in ("station_id", "community_id"):
            if a.get(key) not in (None, ""):
                try:
                    item[key] = int(a[key])
                except (TypeError, ValueError):
                    raise ValidationError("停热范围格式有误", fields={"areas": ["格式有误"]})
        if a.get("building"):
            item["building"] = str(a["building"])
        clean.append(item)
    return clean


def _audience_filter(areas: list[dict]) -> dict:
    """Picker areas as the announcement service's area filter."""
    return {
        "station_ids": [a["station_id"] for a in areas if a.get("station_id")],
        "community_ids": [a["community_id"] for a in areas if a.get("community_id") and not a.get("building")],
        "buildings": [{"community_id": a["community_id"], "building": a["building"]}
                      for a in areas if a.get("community_id") and a.get("building")],
    }


def _transient_areas(areas: list[dict]) -> list[OutageArea]:
    return [OutageArea(station_id=a.get("station_id"), community_id=a.get("community_id"),
                       building=a.get("building")) for a in areas]


@bp.route("/areas/affected.json", methods=["POST"], endpoint="affected_count")
def affected_count():
    """Households inside the picked areas (shown before an outage is sent)."""
    areas = _areas_from_json(request.get_data(as_text=True))
    return jsonify(households=outage_service.count_affected(_transient_areas(areas)) if areas else 0)


# --- announcements -----------------------------------------------------------------------------

@bp.route("/announcements")
def announcements():
    rows = db.session.scalars(select(Announcement).order_by(Announcement.id.desc()).limit(100)).all()
    progress = {a.id: announcement_service.progress(a.id) for a in rows}
    return render_template("console/announcements.html", rows=rows, progress=progress, labels=ANN_LABELS,
                           audience_labels=Audience.LABELS, status_label=status_label, tone=result_tone)


@bp.route("/announcements/new")
def announcement_new(confirm_count: int | None = None):
    """The composer; after a refused or unconfirmed POST, the same form with what was typed."""
    posted = request.method == "POST"
    current = _areas_from_json(request.form.get("areas")) if posted else []
    return render_template("console/announcement_new.html", areas=area_options(), audience_labels=Audience.LABELS,
                           current_areas=current, confirm_count=confirm_count)


@bp.route("/announcements/audience.json", methods=["POST"], endpoint="audience_count")
def audience_count():
    data = request.get_json(silent=True) or {}
    audience = data.get("audience", Audience.ALL)
    areas = _areas_from_json(json.dumps(data.get("areas") or []))
    try:
        count = announcement_service.count_audience(audience, _audience_filter(areas) if audience == Audience.AREA else None)
    except ValidationError as exc:
        return error_response(400, exc.code, exc.message, exc.fields)
    return jsonify(recipients=count)


@bp.route("/announcements", methods=["POST"])
def announcement_create():
    form = request.form
    audience = form.get("audience", Audience.ALL)
    areas = _areas_from_json(form.get("areas"))
    send = form.get("send", "now")
    scheduled_at = parse_local_datetime(form.get("scheduled_at"), "scheduled_at") if send == "later" else None
    if send == "later" and scheduled_at is None:
        raise ValidationError("请选择定时发送时间", fields={"scheduled_at": ["请选择定时发送时间"]})
    audience_filter = _audience_filter(areas) if audience == Audience.AREA else None
    if send in ("now", "later"):
        # A mass send goes out only once staff have seen how many people it reaches (and the
        # number they confirmed is still the number now).
        recipients = announcement_service.count_audience(audience, audience_filter)
        if str(recipients) not in form.getlist("confirmed"):
            return announcement_new(confirm_count=recipients)
    ann = announcement_service.compose_announcement(
        title=form.get("title", ""), body=form.get("body", ""), audience=audience, audience_filter=audience_filter,
        scheduled_at=scheduled_at, created_by_id=auth.current_staff().id,
    )
    if send == "now":
        announcement_service.start_announcement(ann.id)
        message = "公告已开始发送"
    elif send == "later":
        message = "公告已定时"
    else:
        message = "草稿已保存"
    return done(message, "console.announcement_detail", announcement_id=ann.id)


@bp.route("/announcements/<int:announcement_id>")
def announcement_detail(announcement_id: int):
    ann = announcement_service.get_announcement(announcement_id)
    p = announcement_service.progress(ann.id)
    return render_template("console/announcement.html", a=ann, progress=p, labels=ANN_LABELS,
                           audience_labels=Audience.LABELS, area_text=_audience_text(ann),
                           status_text=status_label(p), percent=percent_done(p), tone=result_tone(p),
                           unknown=announcement_service.unknown_deliveries(ann.id, limit=UNKNOWN_LIST_LIMIT),
                           failed=announcement_service.deliveries_with_status(ann.id, DeliveryStatus.FAILED, limit=UNKNOWN_LIST_LIMIT),
                           skipped=announcement_service.deliveries_with_status(ann.id, DeliveryStatus.SKIPPED,
                                                                  limit=UNKNOWN_LIST_LIMIT),
                           reasons=announcement_service.outcome_summary(ann.id), reason_text=reason_text,
                           outcome_labels=OUTCOME_LABELS, unknown_limit=UNKNOWN_LIST_LIMIT,
                           channel_labels=CHANNEL_LABELS)


def _audience_text(ann: Announcement) -> str:
    if ann.audience != Audience.AREA:
        return Audience.LABELS.get(ann.audience, ann.audience)
    f = ann.audience_filter or {}
    parts = []
    if f.get("station_ids"):
        names = db.session.scalars(select(Station.name).where(Station.id.in_(f["station_ids"]))).all()
        parts.append("换热站：" + "、".join(names))
    if f.get("community_ids"):
        names = db.session.scalars(select(Community.name).where(Community.id.in_(f["community_ids"]))).all()
        parts.append("小区：" + "、".join(names))
    for b in f.get("buildings") or []:
        c = db.session.get(Community, int(b["community_id"]))
        parts.append(f"{c.name if c else '?'}{b['building']}号楼")
    return "指定区域（" + "；".join(parts) + "）"


@bp.route("/announcements/<int:announcement_id>/progress.json")
def announcement_progress(announcement_id: int):
    p = announcement_service.progress(announcement_id)
    p["percent"] = percent_done(p)
    p["status_label"] = status_label(p)
    p["tone"] = result_tone(p)
    return jsonify(p)


@bp.route("/announcements/<int:announcement_id>/retry-failed", methods=["POST"])
def announcement_retry_failed(announcement_id: int):
    """重试失败: exactly the recipients whose send failed, once more each."""
    count = announcement_service.retry_failed(announcement_id)
    message = f"已开始重试发送给{count}人" if count else "没有需要重试的失败接收人（可能已在重试中）"
    return done(message, "console.announcement_detail", announcement_id=announcement_id)


@bp.route("/announcements/<int:announcement_id>/resend", methods=["POST"])
def announcement_resend(announcement_id: int):
    """重新发送: once more to the people whose outcome is unknown (one, or all of them)."""
    ids = [int(v) for v in request.form.getlist("delivery_id") if v.isdigit()]
    if not ids and not request.form.get("all"):
        raise ValidationError("请选择要重新发送的接收人")
    count = announcement_service.resend_unknown(announcement_id, ids or None)
    status = announcement_service.get_announcement(announcement_id).status
    if not count:
        message = "这些接收人已重新发送过，无需再次发送"
    elif status in (AnnouncementStatus.PAUSED, AnnouncementStatus.HALTED):
        message = f"已安排重新发送给{count}人，公告继续发送后发出"
    else:
        message = f"已开始重新发送给{count}人"
    return done(message, "console.announcement_detail", announcement_id=announcement_id)


@bp.route("/announcements/<int:announcement_id>/<action>", methods=["POST"])
def announcement_action(announcement_id: int, action: str):
    actions = {"start": (announcement_service.start_announcement, "公告已开始发送"),
               "pause": (announcement_service.pause_announcement, "已暂停发送"),
               "resume": (announcement_service.resume_announcement, "已继续发送"),
               "cancel": (announcement_service.cancel_announcement, "公告已撤回")}
    if action not in actions:
        abort(404)
    func_, message = actions[action]
    func_(announcement_id)
    return done(message, "console.announcement_detail", announcement_id=announcement_id)


# --- outages -------------------------------------------------------------------------------------

@bp.route("/outages")
def outages():
    rows = db.session.scalars(select(Outage).order_by(Outage.id.desc()).limit(100)).all()
    # Restored outages keep their areas: their count is the households they affected.
    affected = {o.id: outage_service.count_affected(o.areas) for o in rows if o.areas}
    ids = [o.id for o in rows]
    linked = dict(db.session.execute(select(Ticket.outage_id, func.count(Ticket.id))
                                     .where(Ticket.outage_id.in_(ids)).group_by(Ticket.outage_id)).all()) if ids else {}
    return render_template("console/outages.html", rows=rows, affected=affected, labels=OutageStatus.LABELS,
                           kinds=OutageKind.LABELS, linked=linked,
                           clusters=[(c, cluster_service.place_name(c)) for c in cluster_service.open_clusters()])


@bp.route("/clusters")
def clusters():
    """疑似停热: open clusters of no-heat reports, each with its reports and a convert form."""
    rows = [(c, cluster_service.place_name(c), cluster_service.cluster_reports(c), _cluster_households(c))
            for c in cluster_service.open_clusters()]
    confirm = request.view_args.get("cluster_id") if request.method == "POST" else None
    return render_template("console/clusters.html", rows=rows, confirm=confirm)


def _cluster_households(cluster: OutageCluster) -> int:
    """Households a conversion would notify (the cluster's station or community)."""
    return outage_service.count_affected([OutageArea(station_id=cluster.station_id)] if cluster.station_id
                                         else [OutageArea(community_id=cluster.community_id)])


@bp.route("/clusters/<int:cluster_id>/convert", methods=["POST"])
def cluster_convert(cluster_id: int):
    form = request.form
    cluster = db.session.get(OutageCluster, cluster_id) or abort(404)
    if cluster.status == ClusterStatus.OPEN and str(_cluster_households(cluster)) not in form.getlist("confirmed"):
        return clusters()  # shows how many households will be notified; converted only once confirmed
    outage, linked = outage_linking.convert_cluster(
        cluster_id, expected_end_at=parse_local_datetime(form.get("expected_end_at"), "expected_end_at"),
        reason=form.get("reason"), title=form.get("title"), created_by_id=auth.current_staff().id)
    return done(f"已转为停热，正在通知 {outage_service.count_affected(outage.areas)} 户，关联报修 {linked} 起",
                "console.outage_edit", outage_id=outage.id)


@bp.route("/outages/new")
def outage_new():
    current = _areas_from_json(request.form.get("areas")) if request.method == "POST" else []
    return render_template("console/outage_form.html", o=None, areas=area_options(), kinds=OutageKind.LABELS,
                           current_areas=current)


@bp.route("/outages", methods=["POST"])
def outage_create():
    form = request.form
    starts_at = parse_local_datetime(form.get("starts_at"), "starts_at") or utcnow()
    outage = outage_service.create_outage(
        title=form.get("title", ""), kind=form.get("kind", ""), reason=form.get("reason", ""),
        starts_at=starts_at, expected_end_at=parse_local_datetime(form.get("expected_end_at"), "expected_end_at"),
        areas=_areas_from_json(form.get("areas")), created_by_id=auth.current_staff().id,
    )
    return done(f"停热通知已创建，影响 {outage_service.count_affected(outage.areas)} 户，通知发送中",
                "console.outage_edit", outage_id=outage.id)


@bp.route("/outages/<int:outage_id>")
def outage_edit(outage_id: int):
    outage = db.session.get(Outage, outage_id) or abort(404)
    current = [{"station_id": a.station_id, "community_id": a.community_id, "building": a.building}
               for a in outage.areas]
    if request.endpoint == "console.outage_update" and request.form.get("areas"):
        try:  # a refused update shows the areas just picked, not the saved ones
            current = _areas_from_json(request.form.get("areas"))
        except ValidationError:
            pass
    return render_template("console/outage_form.html", o=outage, areas=area_options(), kinds=OutageKind.LABELS,
                           current_areas=current, labels=OutageStatus.LABELS,
                           affected=outage_service.count_affected(outage.areas))


@bp.route("/outages/<int:outage_id>", methods=["POST"])
def outage_update(outage_id: int):
    form = request.form
    areas = _areas_from_json(form.get("areas")) if form.get("areas") else None
    outage_service.update_outage(
        outage_id, expected_end_at=parse_local_datetime(form.get("expected_end_at"), "expected_end_at"),
        reason=form.get("reason") or None, areas=areas,
    )
    return done("停热信息已更新，变更通知发送中", "console.outage_edit", outage_id=outage_id)


@bp.route("/outages/<int:outage_id>/restore", methods=["POST"])
def outage_restore(outage_id: int):
    outage_linking.restore_outage(outage_id)
    return done("已标记恢复供热，恢复通知发送中", "console.outage_edit", outage_id=outage_id)


@bp.route("/outages/<int:outage_id>/cancel", methods=["POST"])
def outage_cancel(outage_id: int):
    outage_service.cancel_outage(outage_id)
    return done("计划停热已取消，通知发送中", "console.outage_edit", outage_id=outage_id)


# --- knowledge base ------------------------------------------------------------------------------

@bp.route("/faq")
def faq():
    q = (request.args.get("q") or "").strip()
    query = select(FaqEntry).order_by(FaqEntry.category, FaqEntry.id)
    if q:
        like = f"%{q}%"
        query = query.where(or_(FaqEntry.question.ilike(like), FaqEntry.answer.ilike(like),
                                FaqEntry.keywords.ilike(like)))
    return render_template("console/faq.html", rows=db.session.scalars(query).all(), q=q)


@bp.route("/faq/new")
@bp.route("/faq/<int:entry_id>/edit")
def faq_edit(entry_id: int | None = None):
    entry = db.session.get(FaqEntry, entry_id) if entry_id else None
    if entry_id and entry is None:
        abort(404)
    categories = db.session.scalars(select(FaqEntry.category).distinct().order_by(FaqEntry.category)).all()
    return render_template("console/faq_form.html", e=entry, categories=categories)


def _faq_fields(form) -> dict:
    fields = {k: (form.get(k) or "").strip() for k in ("question", "answer", "keywords", "category")}
    errors = {k: [f"请填写{label}"] for k, label in (("question", "问题"), ("answer", "答案"), ("category", "分类"))
              if not fields[k]}
    if len(fields["question"]) > 200:
        errors["question"] = ["问题不能超过200字"]
    if errors:
        raise ValidationError("知识库条目填写不完整", fields=errors)
    clash = db.session.scalar(select(FaqEntry.id).where(FaqEntry.question == fields["question"]))
    return {**fields, "active": form.get("active") == "1", "_clash": clash}


@bp.route("/faq", methods=["POST"])
def faq_create():
    fields = _faq_fields(request.form)
    if fields.pop("_clash"):
        raise ValidationError("已有相同问题的条目", fields={"question": ["已有相同问题的条目"]})
    entry = FaqEntry(**fields)
    db.session.add(entry)
    db.session.flush()
    return done("知识库条目已添加", "console.faq")


@bp.route("/faq/<int:entry_id>", methods=["POST"])
def faq_update(entry_id: int):
    entry = db.session.get(FaqEntry, entry_id) or abort(404)
    fields = _faq_fields(request.form)
    clash = fields.pop("_clash")
    if clash and clash != entry.id:
        raise ValidationError("已有相同问题的条目", fields={"question": ["已有相同问题的条目"]})
    for key, value in fields.items():
        setattr(entry, key, value)
    return done("知识库条目已保存", "console.faq")


@bp.route("/faq/<int:entry_id>/delete", methods=["POST"])
def faq_delete(entry_id: int):
    entry = db.session.get(FaqEntry, entry_id) or abort(404)
    db.session.delete(entry)
    return done("知识库条目已删除", "console.faq")


# --- bridge dead letters --------------------------------------------------------------------------

@bp.route("/dead-letters")
def dead_letters():
    show_all = bool(request.args.get("all"))
    rows = list_dead_letters(include_replayed=show_all, limit=100)
    return render_template("console/dead_letters.html", rows=rows, show_all=show_all, endpoint_labels=BRIDGE_ENDPOINTS,
                           reason_of=dead_letter_reason, replay_of=replay_text)


@bp.route("/dead-letters/<int:letter_id>/replay", methods=["POST"])
def dead_letter_replay(letter_id: int):
    corrected = (request.form.get("raw") or "").strip()
    try:
        answer = replay(letter_id, corrected.encode() if corrected else None)
    except LookupError:
        abort(404)
    except ValueError as exc:
        raise ValidationError(f"无法重放：{exc}")
    db.session.commit()
    if answer.status < 300:
        result = answer.body.get("result", "")
        flash(f"重放成功：{BRIDGE_RESULTS.get(result, result)}", "ok")
    else:
        message = (answer.body.get("error") or {}).get("message", "")
        flash(f"重放失败（{answer.status}）：{message}", "error")
    return redirect(url_for("console.dead_letters"))


# --- failed jobs (RQ's failed-job registries) -----------------------------------------------------

def _failed_jobs() -> list[dict]:
    rows = []
    for name in QUEUES:
        queue = get_queue(name)
        registry = FailedJobRegistry(name, connection=queue.connection)
        ids = registry.get_job_ids(0, 199)
        for job in Job.fetch_many(ids, connection=queue.connection):
            if job is None:
                continue
            info = job.latest_result() if hasattr(job, "latest_result") else None
            error = (info.exc_string if info is not None and info.exc_string else job.exc_info) or ""
            rows.append({"id": job.id, "queue": name, "func": job.func_name, "args": repr(job.args)[:200],
                         "ended_at": job.ended_at, "error": error.strip().splitlines()[-1] if error else ""})
    return rows


@bp.route("/jobs/failed")
def failed_jobs():
    return render_template("console/failed_jobs.html", rows=_failed_jobs(),
                           notices=notice_service.unknown_notices(limit=UNKNOWN_LIST_LIMIT),
                           notices_total=notice_service.count_unknown_notices(), channel_labels=CHANNEL_LABELS)


@bp.route("/notices/<int:outbound_id>/resend", methods=["POST"])
def notice_resend(outbound_id: int):
    """重新发送 a single notice whose outcome is unknown (exactly once more)."""
    if notice_service.resend_notice(outbound_id):
        message = "已重新发送该通知"
    else:
        message = "该通知已重新发送过，无需再次发送"
    return done(message, "console.failed_jobs")


@bp.route("/jobs/failed/retry", methods=["POST"])
def failed_job_retry():
    wanted = request.form.getlist("job_id")
    queue_name = request.form.get("queue")
    retried = 0
    for name in QUEUES:
        if queue_name and name != queue_name:
            continue
        queue = get_queue(name)
        registry = FailedJobRegistry(name, connection=queue.connection)
        for job_id in registry.get_job_ids():
            if request.form.get("all") or job_id in wanted:
                registry.requeue(job_id)
                retried += 1
    flash(f"已重新排队 {retried} 个任务", "ok")
    return redirect(url_for("console.failed_jobs"))


# --- reports ---------------------------------------------------------------------------------------

def _report_params():
    return report_service.parse_params(request.args.get("date_from"), request.args.get("date_to"),
                                       request.args.get("period"), today=local_today())


@bp.route("/reports")
def reports():
    try:
        params = _report_params()
    except ValidationError as exc:
        params = report_service.parse_params(None, None, None, today=local_today())
        flash(exc.message + "：" + "；".join(f"{m[0]}" for m in exc.fields.values()), "error")
    report = report_service.full_report(params)
    return render_template("console/reports.html", r=report, p=params, periods=report_service.PERIODS)


@bp.route("/reports.xlsx")
def reports_xlsx():
    params = _report_params()
    data = report_service.report_workbook(report_service.full_report(params))
    filename = f"report-{params.date_from.isoformat()}-{params.date_to.isoformat()}.xlsx"
    return Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
