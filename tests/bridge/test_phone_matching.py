"""A caller finds the household whatever way either side wrote the number (issue 16)."""
from __future__ import annotations

from openpyxl import Workbook
from sqlalchemy import select

from app.imports.households import import_households
from app.models import CallLog, Household, Ticket

HEADER = ["用户编号", "区", "小区名称", "楼栋名称", "单元号", "房号", "采暖面积", "用户姓名", "联系电话"]


def _import(db, tmp_path, *rows):
    path = tmp_path / "households.xlsx"
    wb = Workbook()
    wb.active.append(HEADER)
    for r in rows:
        wb.active.append(r)
    wb.save(path)
    result = import_households(path)
    assert result.errors == []
    db.session.commit()
    return {h.account_no: h for h in db.session.scalars(select(Household))}


def test_a_landline_caller_finds_the_household_imported_with_a_differently_written_number(db, phone, tmp_path):
    homes = _import(db, tmp_path,
                    ["91000001", "和平区", "幸福小区", "3", "2", "501", 88, "张伟", "024-23456789"],
                    ["91000002", "和平区", "幸福小区", "3", "2", "502", 90, "李娜", "+86 451 8234 5678 转12"],
                    ["91000003", "和平区", "幸福小区", "3", "2", "601", 90, "王芳", "１３９４０５１２２３４"])

    created = phone.post("/tickets", {"external_id": "CC-1", "event_id": "e-1", "type": "repair",
                                      "caller_phone": "+86 24 2345 6789", "description": "暖气不热"})
    assert created.status_code in (200, 201), created.get_json()
    ticket = db.session.scalar(select(Ticket).where(Ticket.external_id == "CC-1"))
    assert ticket.household_id == homes["91000001"].id and ticket.caller_phone == "+862423456789"

    # The phone system's caller id: no trunk 0 for a landline, or an IP-dial prefix in front.
    for written, account_no in (("02423456789", "91000001"), ("0451-82345678", "91000002"),
                                ("17951 0451 82345678", "91000002"), ("8613940512234", "91000003"),
                                ("１３９４０５１２２３４", "91000003")):
        body = phone.get(f"/callers/{written}").get_json()
        assert [h["account_no"] for h in body["households"]] == [account_no], written

    phone.post("/calls", {"event_id": "c-1", "call_id": "call-1", "event": "ringing",
                          "caller_phone": "0086 451 8234 5678"})
    call = db.session.scalar(select(CallLog))
    assert call.household_id == homes["91000002"].id and call.caller_phone == "+8645182345678"


def test_an_extension_is_kept_apart_on_the_ticket(db, phone):
    phone.post("/tickets", {"external_id": "CC-2", "event_id": "e-2", "type": "inquiry",
                            "caller_phone": "022-23456789转8001", "description": "咨询缴费"})
    ticket = db.session.scalar(select(Ticket).where(Ticket.external_id == "CC-2"))
    assert (ticket.caller_phone, ticket.caller_phone_ext) == ("+862223456789", "8001")


def test_a_number_that_is_no_phone_is_refused_with_the_reason(db, phone):
    res = phone.post("/tickets", {"external_id": "CC-3", "event_id": "e-3", "type": "inquiry",
                                  "caller_phone": "23456789", "description": "咨询"})
    assert res.status_code in (400, 422)
    assert "固定电话需带区号" in str(res.get_json())
    assert phone.get("/callers/95598").get_json()["error"]["message"].startswith("电话号码格式不正确")
