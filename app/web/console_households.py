"""住户: the household list of the console — search, filters, pages — and its Excel export in
the import template (the same file as ``flask export-households``, restricted to the filter).

Same blueprint and rules as ``app.web.console``. Any console user sees the list, names and
numbers masked as in every list; each row links to the customer page (full data, recorded
there). The export holds full names and phone numbers (the import needs them to round-trip),
so only admins may download it; each download is recorded in the personal-data access log
with its filter and row count, as the ticket export is. The file is written by
``app.imports.households.write_export_xlsx`` to a temporary file (write-only workbook, rows
streamed from the database in chunks) and sent from there: memory stays flat at 100k rows.
"""
from __future__ import annotations

import tempfile

from flask import abort, render_template, request, send_file
from sqlalchemy import select

from app.errors import ValidationError
from app.extensions import db
from app.imports.households import write_export_xlsx
from app.models import AccessAction, Community, District, Station, utcnow
from app.services import household_list, privacy, staff_admin
from app.services.billing import local_today
from app.services.exports import XLSX_MIMETYPE
from app.web import auth
from app.web.console_base import PAGE_SIZE, bp, tz

# The console's export stops here; a bigger file is the CLI's job (flask export-households).
EXPORT_MAX_ROWS = 100_000


def can_export(staff) -> bool:
    return staff_admin.can_manage_staff(staff)


def _choices() -> dict:
    """The filters' drop-downs: districts, communities (by district), stations."""
    return {"districts": db.session.scalars(select(District).order_by(District.name)).all(),
            "communities": db.session.scalars(select(Community).order_by(Community.district_id, Community.name)).all(),
            "stations": db.session.scalars(select(Station).order_by(Station.name)).all()}


@bp.route("/households")
def households():
    today = local_today()
    errors = {}
    try:
        f = household_list.parse_filter(request.args)
    except ValidationError as exc:
        f, errors = household_list.HouseholdFilter(), exc.fields
    if errors:
        result = household_list.HouseholdPage(rows=[], total=0, page=1, pages=1)
    else:
        result = household_list.list_households(f, today, page=request.args.get("page", 1, type=int) or 1,
                                                per_page=PAGE_SIZE)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("console/households.html", r=result, f=f, args=args, errors=errors,
                           status_labels=household_list.STATUS_LABELS, export_max=EXPORT_MAX_ROWS,
                           can_export=can_export(auth.current_staff()), **_choices())


@bp.route("/households.xlsx")
def households_xlsx():
    """The filtered list in the import template (full data): admins only, recorded."""
    staff = auth.current_staff()
    if not can_export(staff):
        abort(403)
    today = local_today()
    f = household_list.parse_filter(request.args)   # a bad filter is refused, never "everything"
    total = household_list.count_households(f, today)
    if total > EXPORT_MAX_ROWS:
        raise ValidationError(f"符合条件的住户有 {total} 户，超过网页导出上限 {EXPORT_MAX_ROWS} 户。"
                              "请缩小筛选范围，或由管理员在服务器上运行 flask export-households 导出全部住户。")
    out = tempfile.TemporaryFile(prefix="households-", suffix=".xlsx")   # gone when closed
    try:
        rows = write_export_xlsx(out, where=household_list.conditions(f, today))
        described = f.describe()
        privacy.record_access(staff, AccessAction.EXPORT_HOUSEHOLDS, subject=f"住户名单（{described}）",
                              detail=f.args(), rows=rows, client_ip=request.remote_addr)
        db.session.commit()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    filename = f"households-{utcnow().astimezone(tz()).strftime('%Y%m%d-%H%M')}.xlsx"
    response = send_file(out, mimetype=XLSX_MIMETYPE, as_attachment=True, download_name=filename,
                         max_age=0, conditional=False)
    response.headers["X-Row-Count"] = str(rows)
    return response
