"""Input (``*Args``) and output (``*Schema``) schemas of the mobile API.

Money is integer fen; times are ISO 8601 in UTC; user-facing labels are Chinese.
"""
from __future__ import annotations

import re

from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate
from marshmallow import ValidationError as MarshmallowValidationError
from werkzeug.datastructures import FileStorage

from app.fields import CleanString
from app.models import OutageStatus, Priority, TicketCategory, TicketState
from app.services import access, outages as outage_service, privacy, uploads
from app.services.tickets import EVENT_LABELS, waits_on_outage
from mobile_api.common import PageArgs, page_schema

MAX_PHOTOS = uploads.MAX_PHOTOS
MAX_ID = 2**31 - 1   # ids are 32-bit integers in the database
PHOTOS_DESCRIPTION = (f"最多{uploads.MAX_PHOTOS}张，每张不超过{uploads.MAX_BYTES // (1024 * 1024)}MB、"
                      f"{uploads.MAX_PIXELS // 10_000}万像素，合计不超过{uploads.MAX_REQUEST_PIXELS // 10_000}万像素"
                      "（JPEG/PNG/GIF）；超过为413")


class Photo(Upload):
    """One uploaded file of a multipart body: a text field of the same name is refused (400)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, FileStorage):
            raise MarshmallowValidationError("请以文件形式上传照片")
        return value


def photos_field(**metadata) -> fields.List:
    return fields.List(Photo(), load_default=list, validate=validate.Length(max=MAX_PHOTOS),
                       metadata={"description": PHOTOS_DESCRIPTION, **metadata})


def _photo_url(photo) -> str | None:
    return f"/api/v1/photos/{photo.id}" if photo.path else None


# --- auth ---------------------------------------------------------------------------------

_WX_CODE = re.compile(r"[0-9A-Za-z_\-+/=.]{1,128}")


def _wx_login_code(value: str) -> None:
    """wx.login codes are short ASCII tokens (32 letters and digits today): anything else is
    the caller's mistake (400), never worth a call to WeChat."""
    if not _WX_CODE.fullmatch(value):
        raise MarshmallowValidationError("code 格式不正确，请重新调用 wx.login 获取")


class LoginArgs(Schema):
    code = fields.String(required=True, validate=[validate.Length(min=1, max=128), _wx_login_code],
                         metadata={"description": "wx.login() 返回的 code"})


class RefreshArgs(Schema):
    refresh_token = fields.String(load_default=None, validate=validate.Length(max=512),
                                  metadata={"description": "登录或上次刷新时得到的 refresh_token（只能用一次）"})


class LinkArgs(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=16),
                         metadata={"description": "公众号中回复“关联”得到的6位关联码"})


class StaffBriefSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    crew_id = fields.Integer(allow_none=True)


class UserSchema(Schema):
    id = fields.Integer(required=True)
    nickname = fields.String(allow_none=True)
    staff = fields.Method("_staff", allow_none=True)

    def _staff(self, user):
        staff = user.staff
        if staff is None or not staff.active:
            return None
        return StaffBriefSchema().dump(staff)


class LoginSchema(Schema):
    token = fields.String(required=True, metadata={"description": "访问令牌：Authorization: Bearer <token>"})
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "访问令牌的有效期（秒）"})
    refresh_token = fields.String(required=True, metadata={
        "description": "用于 POST /api/v1/auth/refresh 换取新令牌；只能用一次，用后作废"})
    refresh_expires_in = fields.Integer(required=True, metadata={
        "description": "refresh_token 的有效期（秒）：7天未用即过期，且不超过本次登录的30天上限"})
    roles = fields.List(fields.String(), required=True,
                        metadata={"description": "resident，以及 crew_member / crew_lead / crew / agent / leader / admin"})
    user = fields.Nested(UserSchema, required=True)


# --- households and bills -------------------------------------------------------------------

class BindArgs(Schema):
    # CleanString: full-width ３９４０ and stray spaces typed with a Chinese keyboard are folded.
    account_no = CleanString(required=True, validate=validate.Length(min=1, max=20))
    owner_name = CleanString(validate=validate.Length(max=40), load_default=None)
    phone_last4 = CleanString(validate=validate.Length(max=4), load_default=None)


class HouseholdSchema(Schema):
    id = fields.Integer(required=True)
    account_no = fields.String(required=True)
    address = fields.String(required=True)
    area_m2 = fields.String(required=True, metadata={"description": "面积（平方米），十进制字符串"})
    owner_name = fields.Function(lambda household: privacy.mask_name(household.owner_name), required=True)
    status = fields.String(required=True)


HouseholdPageSchema = page_schema(HouseholdSchema, "HouseholdPage")


class BillArgs(PageArgs):
    season = fields.String(validate=validate.Length(max=20), load_default=None,
                           metadata={"description": "供暖季，如 2026-2027；不填为全部"})


class BillSchema(Schema):
    id = fields.Integer(required=True)
    season = fields.String(required=True, attribute="season.code")
    season_starts_on = fields.Date(required=True, attribute="season.starts_on")
    season_ends_on = fields.Date(required=True, attribute="season.ends_on")
    due_on = fields.Date(required=True, attribute="season.due_on")
    area_m2 = fields.String(required=True, metadata={"description": "面积（平方米），十进制字符串"})
    unit_price_fen = fields.Integer(required=True)
    discount_fen = fields.Integer(required=True)
    amount_fen = fields.Integer(required=True)
    paid_fen = fields.Integer(required=True)
    outstanding_fen = fields.Integer(required=True)
    late_fee_fen = fields.Integer(required=True, metadata={"description": "截至今日的滞纳金"})
    total_due_fen = fields.Integer(required=True)
    status = fields.String(required=True)
    paid_at = fields.DateTime(allow_none=True)


BillPageSchema = page_schema(
    BillSchema, "BillPage",
    household_id=fields.Integer(required=True),
    as_of=fields.Date(required=True),
    arrears_principal_fen=fields.Integer(required=True, metadata={"description": "全部欠费本金"}),
    arrears_late_fee_fen=fields.Integer(required=True),
    arrears_total_fen=fields.Integer(required=True),
)


# --- payments -------------------------------------------------------------------------------

class PaymentArgs(Schema):
    household_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    bill_ids = fields.List(fields.Integer(validate=validate.Range(min=1, max=MAX_ID)), required=True,
                           validate=validate.Length(min=1, max=20))


class RequestPaymentSchema(Schema):
    """Pass these to wx.requestPayment as they are."""

    timeStamp = fields.String(required=True)
    nonceStr = fields.String(required=True)
    package = fields.String(required=True)
    signType = fields.String(required=True)
    paySign = fields.String(required=True)


class PaymentItemSchema(Schema):
    bill_id = fields.Integer(required=True)
    season = fields.String(required=True, attribute="bill.season.code")
    principal_fen = fields.Integer(required=True)
    late_fee_fen = fields.Integer(required=True)


class RefundSchema(Schema):
    out_refund_no = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    state = fields.String(required=True, metadata={"description": "pending / processing / success / closed / abnormal / failed"})
    state_label = fields.String(required=True)
    reason = fields.String(required=True)
    succeeded_at = fields.DateTime(allow_none=True)


class PaymentSchema(Schema):
    out_trade_no = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    state = fields.String(required=True, metadata={"description": "created / paid / closed / refunded"})
    description = fields.String(allow_none=True)
    household_id = fields.Method("_household", allow_none=True)
    transaction_id = fields.String(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)
    items = fields.List(fields.Nested(PaymentItemSchema), required=True)

    def _household(self, payment):
        return payment.items[0].bill.household_id if payment.items else None


class PaymentCreatedSchema(PaymentSchema):
    pay_params = fields.Nested(RequestPaymentSchema, required=True)


PaymentPageSchema = page_schema(PaymentSchema, "PaymentPage")


class ReceiptSchema(Schema):
    out_trade_no = fields.String(required=True)
    transaction_id = fields.String(required=True)
    state = fields.String(required=True, metadata={"description": "paid / refunded（已全额退回：收据失效）"})
    amount_fen = fields.Integer(required=True, metadata={"description": "实缴合计 = principal_fen + late_fee_fen"})
    principal_fen = fields.Integer(required=True, metadata={"description": "本金合计"})
    late_fee_fen = fields.Integer(required=True, metadata={"description": "滞纳金合计"})
    refunded_fen = fields.Integer(required=True, metadata={"description": "已退回（重复缴费的退款）"})
    refunds = fields.List(fields.Nested(RefundSchema), required=True)
    paid_at = fields.DateTime(required=True)
    account_no = fields.String(required=True)
    address = fields.String(required=True)
    items = fields.List(fields.Nested(PaymentItemSchema), required=True)
    verify_url = fields.String(required=True, metadata={"description": "收据核验页（二维码内容）"})
    qr_code = fields.String(required=True, metadata={"description": "核验二维码 PNG 的 data URL"})


# --- tickets ---------------------------------------------------------------------------------

class PhotoSchema(Schema):
    id = fields.Integer(required=True)
    url = fields.Function(_photo_url, allow_none=True,
                          metadata={"description": "带令牌 GET；为空表示照片仍在从微信获取"})
    content_type = fields.String(allow_none=True)


class EventSchema(Schema):
    id = fields.Integer(required=True)
    action = fields.String(required=True)
    label = fields.Method("_label", required=True)
    from_state = fields.String(allow_none=True)
    to_state = fields.String(allow_none=True)
    actor_kind = fields.String(required=True)
    actor_name = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    photos = fields.List(fields.Nested(PhotoSchema), required=True)

    def _label(self, event):
        return EVENT_LABELS.get(event.action, event.action)


class TicketBriefSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    type = fields.String(required=True)
    category = fields.String(required=True)
    category_label = fields.Function(lambda t: TicketCategory.LABELS.get(t.category, t.category), required=True)
    priority = fields.String(required=True)
    state = fields.String(required=True)
    state_label = fields.Function(lambda t: TicketState.LABELS.get(t.state, t.state), required=True)
    household_id = fields.Integer(allow_none=True)
    address = fields.String(allow_none=True)
    description = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    respond_by = fields.DateTime(allow_none=True)
    finish_by = fields.DateTime(allow_none=True)
    rating = fields.Integer(allow_none=True)


class LinkedOutageSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    reason = fields.String(required=True)
    status = fields.String(required=True)
    starts_at = fields.DateTime(required=True)
    expected_end_at = fields.DateTime(allow_none=True)
    actual_end_at = fields.DateTime(allow_none=True)


def _outage_message(ticket) -> str | None:
    """What the resident reads about the outage their report is linked to."""
    if not waits_on_outage(ticket):
        return None
    outage = ticket.outage
    if outage.status == OutageStatus.RESTORED:
        until = outage_service.still_cold_until(outage)
        return (f"已于{outage_service.local_time(outage.actual_end_at)}恢复供热。如{outage_service.local_time(until)}前"
                "家中仍不热，请点击“仍不热”，我们将派维修人员上门。")
    return outage_service.linked_message(outage)


class TicketDetailSchema(TicketBriefSchema):
    outage_id = fields.Integer(allow_none=True, metadata={"description": "关联的停热（关联后不单独派单）"})
    outage = fields.Nested(LinkedOutageSchema, allow_none=True)
    message = fields.Function(_outage_message, allow_none=True,
                              metadata={"description": "给住户的停热说明（预计恢复时间等），未关联停热时为空"})
    can_report_still_cold = fields.Function(access.still_cold_open, required=True,
                                            metadata={"description": "恢复供热后的反馈期内，可点击“仍不热”"})
    reply = fields.String(allow_none=True)
    final_answer = fields.String(allow_none=True)
    rating_comment = fields.String(allow_none=True)
    accepted_at = fields.DateTime(allow_none=True)
    replied_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    parent_id = fields.Integer(allow_none=True)
    can_cancel = fields.Function(lambda t: t.state in (TicketState.NEW, TicketState.ASSIGNED), required=True)
    can_rate = fields.Function(lambda t: t.state == TicketState.CLOSED and t.rating is None, required=True)
    photos = fields.List(fields.Nested(PhotoSchema), required=True)
    timeline = fields.List(fields.Nested(EventSchema), required=True, attribute="events")


TicketPageSchema = page_schema(TicketBriefSchema, "TicketPage")


class RepairArgs(Schema):
    household_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    category = fields.String(required=True, validate=validate.OneOf(TicketCategory.ALL))
    description = fields.String(required=True, validate=validate.Length(min=1, max=500))
    location = fields.String(validate=validate.Length(max=200), load_default=None,
                             metadata={"description": "具体位置，如“卧室暖气片”；不填为户的地址"})
    latitude = fields.Float(validate=validate.Range(min=-90, max=90), load_default=None)
    longitude = fields.Float(validate=validate.Range(min=-180, max=180), load_default=None)
    photos = photos_field()


class TicketListArgs(PageArgs):
    state = fields.String(validate=validate.OneOf(("open", "all", *TicketState.ALL)), load_default="all")


class CancelArgs(Schema):
    reason = fields.String(validate=validate.Length(max=200), load_default=None)


class StillColdArgs(Schema):
    note = fields.String(validate=validate.Length(max=200), load_default=None,
                         metadata={"description": "补充说明，如“卧室暖气片仍是凉的”"})


class RateArgs(Schema):
    rating = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(validate=validate.Length(max=500), load_default=None)


# --- outages, announcements, consent --------------------------------------------------------

class OutageSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    kind = fields.String(required=True)
    reason = fields.String(required=True)
    status = fields.String(required=True)
    starts_at = fields.DateTime(required=True)
    expected_end_at = fields.DateTime(allow_none=True)
    actual_end_at = fields.DateTime(allow_none=True)
    household_ids = fields.List(fields.Integer(), required=True, metadata={"description": "受影响的已绑定户"})


OutagePageSchema = page_schema(OutageSchema, "OutagePage")


class AnnouncementSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    category = fields.String(required=True)
    published_at = fields.Method("_published", required=True)

    def _published(self, announcement):
        return (announcement.started_at or announcement.scheduled_at or announcement.created_at).isoformat()


AnnouncementPageSchema = page_schema(AnnouncementSchema, "AnnouncementPage")


class ConsentArgs(Schema):
    template_ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)), required=True,
                               validate=validate.Length(min=1, max=10),
                               metadata={"description": "wx.requestSubscribeMessage 中用户选择“允许”的模板"})


class ConsentSchema(Schema):
    template_id = fields.String(required=True)
    remaining = fields.Integer(required=True)


class ConsentListSchema(Schema):
    items = fields.List(fields.Nested(ConsentSchema), required=True)


# --- crews ------------------------------------------------------------------------------------

class TaskListArgs(PageArgs):
    state = fields.String(validate=validate.OneOf(("open", "all", *TicketState.ALL)), load_default="open")


class TaskSchema(TicketBriefSchema):
    overdue = fields.Boolean(required=True)
    caller_name = fields.String(allow_none=True)
    caller_phone = fields.String(allow_none=True)
    crew_id = fields.Integer(allow_none=True)
    assignee_id = fields.Integer(allow_none=True)


class TaskDetailSchema(TaskSchema, TicketDetailSchema):
    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)
    children = fields.List(fields.Nested(TicketBriefSchema), required=True)


TaskPageSchema = page_schema(
    TaskSchema, "TaskPage",
    counts=fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                       metadata={"description": "我的任务按状态计数"}),
    overdue=fields.Integer(required=True, metadata={"description": "已超时的未完成任务数"}),
)


class NoteArgs(Schema):
    note = fields.String(validate=validate.Length(max=1000), load_default=None)
    photos = photos_field()


class ReplyArgs(Schema):
    reply = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    photos = photos_field()


class ForwardArgs(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))
    crew_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID), load_default=None)
    staff_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID), load_default=None)


class DefectArgs(Schema):
    description = fields.String(required=True, validate=validate.Length(min=1, max=500))
    category = fields.String(validate=validate.OneOf(TicketCategory.ALL), load_default=TicketCategory.OTHER)
    priority = fields.String(validate=validate.OneOf(Priority.ALL), load_default=None)
    photos = photos_field()


class LocationArgs(Schema):
    latitude = fields.Float(required=True, validate=validate.Range(min=-90, max=90))
    longitude = fields.Float(required=True, validate=validate.Range(min=-180, max=180))
    label = fields.String(validate=validate.Length(max=200), load_default=None)


class LocationSchema(Schema):
    latitude = fields.Float(required=True, attribute="last_latitude")
    longitude = fields.Float(required=True, attribute="last_longitude")
    label = fields.String(allow_none=True, attribute="last_location_label")
    located_at = fields.DateTime(required=True, attribute="last_located_at")
