"""Household import from .xlsx: validation report, all-or-nothing / skip-invalid, updates."""
from __future__ import annotations

import csv
from decimal import Decimal

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from app.errors import ValidationError
from app.imports.households import ImportMode, RowError, import_households, write_template
from app.models import Community, District, Household, HouseholdStatus, Station

HEADER = ["户号", "区", "小区", "楼号", "单元", "室", "换热站", "供热面积", "户主姓名", "联系电话", "状态"]


def row(account_no, district="和平区", community="幸福家园", building="1", unit="1", room="101",
        station="幸福换热站", area=89.5, owner="张伟", phone="13800138000", status="正常"):
    return [account_no, district, community, building, unit, room, station, area, owner, phone, status]


def write_xlsx(path, rows, header=HEADER):
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def household(db, account_no):
    return db.session.scalar(select(Household).where(Household.account_no == account_no))


@pytest.fixture()
def clean_file(tmp_path):
    return write_xlsx(tmp_path / "clean.xlsx", [
        row("10010001"),
        row("10010002", room="102", area="120.25", phone="022-23456789", status="报停"),
        row("10010003", district="河西区", community="阳光里", station="HR-007", phone=None, status=None),
    ])


@pytest.fixture()
def bad_file(tmp_path):
    return write_xlsx(tmp_path / "bad.xlsx", [
        row("20010001"),                        # row 2: good
        row(None),                              # row 3: missing 户号
        row("20010003", area="abc"),            # row 4
        row("20010004", area=-5),               # row 5
        row("20010005", phone="1380013800"),    # row 6: 10 digits
        row("20010001", room="909"),            # row 7: duplicate of row 2
        row("20010007", status="停用"),          # row 8
        row("20010008", room="808"),            # row 9: good
    ])


BAD_FILE_ERRORS = [
    RowError(3, "户号", "", "户号不能为空"),
    RowError(4, "供热面积", "abc", "供热面积必须是数字"),
    RowError(5, "供热面积", "-5", "供热面积必须大于0"),
    RowError(6, "联系电话", "1380013800", "联系电话格式不正确（手机号为11位；固定电话需带区号，如 024-23456789）"),
    RowError(7, "户号", "20010001", "户号与第2行重复"),
    RowError(8, "状态", "停用", "状态只能是：正常、报停、销户"),
]


def test_clean_file_creates_households_and_missing_districts_communities_stations(db, clean_file):
    result = import_households(clean_file)
    db.session.commit()

    assert (result.created, result.updated, result.unchanged, result.errors) == (3, 0, 0, [])
    assert (result.districts_created, result.communities_created, result.stations_created) == (2, 2, 2)
    assert count(db, Household) == 3
    assert sorted(db.session.scalars(select(District.name))) == ["和平区", "河西区"]
    h1, h2, h3 = (household(db, n) for n in ("10010001", "10010002", "10010003"))
    assert h1.address == "和平区幸福家园1号楼1单元101室"
    assert h1.station.name == "幸福换热站" and h1.community.station_id == h1.station_id
    assert (h2.area_m2, h2.owner_phone, h2.status) == (Decimal("120.25"), "+862223456789", HouseholdStatus.SUSPENDED)
    assert (h3.owner_phone, h3.status) == (None, HouseholdStatus.ACTIVE)
    assert h3.station.code == "HR-007" and h3.community.name == "阳光里" and h3.district.name == "河西区"
    assert h1.created_at is not None


def test_existing_district_community_and_station_are_reused_by_name_or_code(db, tmp_path, make_area):
    district, community, station = make_area(district="南开区", community="向阳小区", station="向阳站")
    community.station_id = None
    db.session.commit()
    path = write_xlsx(tmp_path / "f.xlsx", [row("1", district="南开区", community="向阳小区", station=station.code),
                                            row("2", district="南开区", community="向阳小区", station=None)])

    result = import_households(path)
    db.session.commit()

    assert (result.districts_created, result.communities_created, result.stations_created) == (0, 0, 0)
    assert household(db, "1").station_id == station.id
    db.session.refresh(community)
    assert community.station_id == station.id  # a station-less community takes the file's station
    assert household(db, "2").station_id == station.id  # blank 换热站: the community's


def test_bad_rows_are_reported_by_excel_row_and_column(db, bad_file):
    result = import_households(bad_file)

    assert result.errors == BAD_FILE_ERRORS
    assert result.rejected_rows == [3, 4, 5, 6, 7, 8]


def test_all_or_nothing_writes_nothing_when_a_row_is_invalid(db, bad_file):
    result = import_households(bad_file, mode=ImportMode.ALL_OR_NOTHING)
    db.session.commit()

    assert not result.written and result.created == 0
    assert count(db, Household) == 0 and count(db, District) == 0 and count(db, Station) == 0


def test_skip_invalid_imports_only_the_good_rows(db, bad_file):
    result = import_households(bad_file, mode=ImportMode.SKIP_INVALID)
    db.session.commit()

    assert result.written and result.created == 2
    assert result.errors == BAD_FILE_ERRORS
    assert sorted(db.session.scalars(select(Household.account_no))) == ["20010001", "20010008"]
    assert household(db, "20010001").room == "101"  # the first of the duplicates wins


def test_reimport_counts_unchanged_and_updates_changed_households(db, tmp_path, clean_file):
    import_households(clean_file)
    db.session.commit()
    again = import_households(clean_file)
    assert (again.created, again.updated, again.unchanged, again.written) == (0, 0, 3, False)

    changed = write_xlsx(tmp_path / "changed.xlsx", [
        row("10010001", area="95.00", owner="李娜"),
        row("10010002", room="102", area="120.25", phone="022-23456789", status="报停"),
        row("10010004", room="104"),
    ])
    result = import_households(changed)
    db.session.commit()

    assert (result.created, result.updated, result.unchanged) == (1, 1, 1)
    h1 = household(db, "10010001")
    assert (h1.area_m2, h1.owner_name) == (Decimal("95.00"), "李娜")
    assert count(db, Household) == 4


def test_blank_optional_cells_keep_the_current_values_on_update(db, tmp_path, clean_file):
    import_households(clean_file)
    db.session.commit()
    path = write_xlsx(tmp_path / "f.xlsx", [row("10010002", room="102", area="120.25", station=None, phone=None,
                                                status=None)])

    result = import_households(path)
    db.session.commit()

    assert result.unchanged == 1
    h2 = household(db, "10010002")
    assert (h2.owner_phone, h2.status, h2.station.name) == ("+862223456789", HouseholdStatus.SUSPENDED, "幸福换热站")


def test_no_update_rejects_existing_account_numbers(db, tmp_path, make_household):
    make_household(account_no="30010001", owner_name="王芳")
    db.session.commit()
    path = write_xlsx(tmp_path / "f.xlsx", [row("30010001"), row("30010002")])

    result = import_households(path, update_existing=False)

    assert result.errors == [RowError(2, "户号", "30010001", "户号已存在，本次导入不允许更新已有用户")]
    assert household(db, "30010001").owner_name == "王芳" and count(db, Household) == 1


def test_dry_run_writes_nothing_but_counts_what_would_happen(db, clean_file):
    result = import_households(clean_file, dry_run=True)
    db.session.commit()

    assert (result.created, result.districts_created, result.written) == (3, 2, False)
    assert count(db, Household) == 0 and count(db, District) == 0 and count(db, Community) == 0


def test_headers_match_by_text_in_any_order_with_aliases(db, tmp_path):
    header = ["联系电话", "房号", "户主", "供热面积(㎡)", "楼栋", "单元号", "小区名称", "区县", "用户编号"]
    path = write_xlsx(tmp_path / "f.xlsx", [["13900139000", "202", "赵敏", 70, "5号楼", "2单元", "金色家园", "红桥区",
                                             40010001]], header=header)

    result = import_households(path)

    assert result.created == 1 and result.errors == []
    h = household(db, "40010001")  # a number cell becomes the text "40010001", not "40010001.0"
    assert (h.building, h.unit, h.room, h.station_id, h.area_m2) == ("5", "2", "202", None, Decimal("70.00"))


@pytest.mark.parametrize("area, message", [
    (2000.01, "供热面积不能超过2000平方米"),
    ("12.345", "供热面积最多保留两位小数"),
    (0, "供热面积必须大于0"),
    (None, "供热面积不能为空"),
])
def test_area_must_be_positive_at_most_2000_with_two_decimals(db, tmp_path, area, message):
    path = write_xlsx(tmp_path / "f.xlsx", [row("1", area=area)])

    assert [e.message for e in import_households(path).errors] == [message]


def test_missing_required_column_is_a_file_error(db, tmp_path):
    header = [h for h in HEADER if h != "供热面积"]
    path = write_xlsx(tmp_path / "f.xlsx", [row("1")[:7] + row("1")[8:]], header=header)

    with pytest.raises(ValidationError, match="表头缺少必填列：供热面积"):
        import_households(path)


def test_template_has_the_header_and_an_example_row_that_imports(db, tmp_path):
    path = tmp_path / "template.xlsx"
    write_template(path)

    ws = load_workbook(path).active
    assert [c.value for c in ws[1]][:3] == ["户号", "区", "小区"]
    result = import_households(path, dry_run=True)
    assert (result.total, result.created, result.errors) == (1, 1, [])


# --- the command ---------------------------------------------------------------------------------

def test_cli_imports_and_commits(db, runner, clean_file):
    result = runner.invoke(args=["import-households", str(clean_file)])

    assert result.exit_code == 0, result.output
    assert "新增 3" in result.output
    db.session.rollback()
    assert count(db, Household) == 3


def test_cli_exits_non_zero_and_writes_nothing_when_all_or_nothing_rejects(db, runner, bad_file, tmp_path):
    report = tmp_path / "report.csv"
    result = runner.invoke(args=["import-households", str(bad_file), "--report", str(report)])

    assert result.exit_code == 1
    assert "导入被拒绝" in result.output and "户号与第2行重复" in result.output
    assert count(db, Household) == 0
    with report.open(encoding="utf-8-sig") as f:
        lines = list(csv.reader(f))
    assert lines[0] == ["行号", "列", "值", "问题"]
    assert lines[1:] == [[str(e.row), e.column, e.value, e.message] for e in BAD_FILE_ERRORS]


def test_cli_skip_invalid_imports_good_rows_and_writes_xlsx_report(db, runner, bad_file, tmp_path):
    report = tmp_path / "report.xlsx"
    result = runner.invoke(args=["import-households", str(bad_file), "--skip-invalid", "--report", str(report)])

    assert result.exit_code == 0, result.output
    assert count(db, Household) == 2
    rows = list(load_workbook(report).active.iter_rows(values_only=True))
    assert rows[0] == ("行号", "列", "值", "问题") and len(rows) == 1 + len(BAD_FILE_ERRORS)


def test_cli_dry_run_writes_nothing(db, runner, clean_file):
    result = runner.invoke(args=["import-households", str(clean_file), "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "试运行" in result.output
    assert count(db, Household) == 0


@pytest.mark.parametrize("name, content", [("missing.xlsx", None), ("households.xls", "not excel"),
                                           ("broken.xlsx", "not a zip")])
def test_cli_missing_or_non_xlsx_file_is_a_clear_error(db, runner, tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)

    result = runner.invoke(args=["import-households", str(path)])

    assert result.exit_code != 0
    assert "Traceback" not in result.output and not isinstance(result.exception, ValidationError)
    assert "Error:" in result.output and ("文件不存在" in result.output or ".xlsx" in result.output)


def test_cli_template_option_writes_a_template(db, runner, tmp_path):
    path = tmp_path / "t.xlsx"
    result = runner.invoke(args=["import-households", "--template", str(path)])

    assert result.exit_code == 0, result.output
    assert load_workbook(path).active["A1"].value == "户号"


def test_cli_crash_mid_write_leaves_nothing_of_the_batch(db, runner, clean_file, monkeypatch):
    import app.imports.households as households

    calls = []

    def failing_resolved(values):  # the second chunk of households blows up
        calls.append(values)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return original(values)

    original = households._resolved
    monkeypatch.setattr(households, "CHUNK", 1)
    monkeypatch.setattr(households, "_resolved", failing_resolved)

    result = runner.invoke(args=["import-households", str(clean_file)])

    assert isinstance(result.exception, RuntimeError)
    db.session.rollback()
    assert count(db, Household) == 0 and count(db, District) == 0 and count(db, Station) == 0


# --- sheets as heating companies have them (issue 16) ------------------------------------------

UTILITY_HEADER = ["住户编号", "行政区", "小区名称", "楼栋名称", "单元号", "门牌号", "热站名称", "建筑面积", "采暖面积(㎡)",
                  "用户姓名", "手机号码", "供暖状态"]


def test_utility_header_aliases_are_understood_and_the_first_listed_area_wins(db, tmp_path):
    path = write_xlsx(tmp_path / "u.xlsx", [
        ["40010001", "铁西区", "幸福小区", "3号楼", "2单元", "501室", "铁西一站", 100, 88.5, "张伟", "13940512234", "正常"],
    ], header=UTILITY_HEADER)

    result = import_households(path)
    db.session.commit()

    assert (result.created, result.errors) == (1, [])
    h = household(db, "40010001")
    assert (h.building, h.unit, h.room, h.area_m2) == ("3", "2", "501", Decimal("88.50"))  # 采暖面积, not 建筑面积
    assert (h.owner_name, h.owner_phone, h.station.name) == ("张伟", "+8613940512234", "铁西一站")


def test_full_width_cells_and_every_way_of_writing_a_phone_are_stored_canonically(db, tmp_path):
    path = write_xlsx(tmp_path / "f.xlsx", [
        row("４００１", room="５０１", phone="１３９４０５１２２３４", owner=" 张\u3000伟 "),
        row("4002", phone="024-23456789转8001"),
        row("4003", phone="+86 24 2345 6790"),
        row("4004", phone="0086 139 4051 2235"),
        row("4005", phone="86-13940512236"),
        row("4006", phone="17951 0451-82345678"),
    ])

    result = import_households(path)
    db.session.commit()

    assert result.errors == [] and result.created == 6
    stored = {h.account_no: (h.room, h.owner_phone, h.owner_phone_ext, h.owner_name)
              for h in db.session.scalars(select(Household))}
    assert stored["4001"] == ("501", "+8613940512234", None, "张 伟")
    assert stored["4002"][1:3] == ("+862423456789", "8001")
    assert stored["4003"][1] == "+862423456790"
    assert stored["4004"][1] == "+8613940512235" and stored["4005"][1] == "+8613940512236"
    assert stored["4006"][1] == "+8645182345678"


def test_merged_community_and_building_cells_are_filled_down(db, tmp_path):
    path = tmp_path / "merged.xlsx"
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    ws.append(row("5001", community="向阳小区", building="1", room="101"))
    ws.append(row("5002", district=None, community=None, building=None, room="102"))
    ws.append(row("5003", district=None, community=None, building="2", room="201"))
    ws.merge_cells("B2:B4")  # 区 over all three rows
    ws.merge_cells("C2:C4")  # 小区 over all three rows
    ws.merge_cells("D2:D3")  # 楼号 over the first building
    wb.save(path)

    result = import_households(path)
    db.session.commit()

    assert result.errors == [] and result.created == 3
    homes = {h.account_no: (h.district.name, h.community.name, h.building)
             for h in db.session.scalars(select(Household))}
    assert homes == {"5001": ("和平区", "向阳小区", "1"), "5002": ("和平区", "向阳小区", "1"),
                     "5003": ("和平区", "向阳小区", "2")}


def test_blank_cells_outside_merged_ranges_are_still_refused(db, tmp_path):
    path = write_xlsx(tmp_path / "f.xlsx", [row("5101"), row("5102", community=None)])

    result = import_households(path)

    assert result.errors == [RowError(3, "小区", "", "小区不能为空")]


ADDRESS_HEADER = ["户号", "区", "地址", "供热面积", "户主姓名", "联系电话"]


@pytest.mark.parametrize("address, expected", [
    ("幸福小区3号楼2单元501", ("幸福小区", "3", "2", "501")),
    ("幸福小区 3-2-501", ("幸福小区", "3", "2", "501")),
    ("幸福小区3栋2单元501室", ("幸福小区", "3", "2", "501")),
    ("沈阳市和平区幸福小区二期12号楼1单元1102室", ("幸福小区二期", "12", "1", "1102")),
    ("阳光里小区 ５－２－３０１", ("阳光里小区", "5", "2", "301")),
])
def test_one_address_column_is_split_into_community_building_unit_room(db, tmp_path, address, expected):
    path = write_xlsx(tmp_path / "a.xlsx", [["6001", "和平区", address, 80, "李娜", "13800138000"]],
                      header=ADDRESS_HEADER)

    result = import_households(path)
    db.session.commit()

    assert result.errors == []
    h = household(db, "6001")
    assert (h.community.name, h.building, h.unit, h.room) == expected
    assert h.district.name == "和平区"


def test_address_without_a_district_column_takes_the_district_it_names(db, tmp_path):
    header = ["户号", "地址", "供热面积", "户主姓名"]
    path = write_xlsx(tmp_path / "a.xlsx", [["6101", "铁西区幸福小区3号楼2单元501室", 80, "李娜"],
                                            ["6102", "幸福小区3号楼2单元502室", 80, "王芳"]], header=header)

    result = import_households(path)

    assert result.errors == [RowError(3, "地址", "幸福小区3号楼2单元502室", "地址中没有区，且表中没有“区”列")]


def test_an_address_that_cannot_be_split_is_reported_by_row(db, tmp_path):
    path = write_xlsx(tmp_path / "a.xlsx", [["6201", "和平区", "幸福小区3号楼2单元501", 80, "李娜", None],
                                            ["6202", "和平区", "幸福小区东门旁边", 80, "王芳", None]],
                      header=ADDRESS_HEADER)

    result = import_households(path, mode=ImportMode.SKIP_INVALID)
    db.session.commit()

    assert [(e.row, e.column, e.value) for e in result.errors] == [(3, "地址", "幸福小区东门旁边")]
    assert "地址无法拆分" in result.errors[0].message and result.created == 1


def write_csv(path, rows, encoding, header=HEADER):
    with path.open("w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_in_utf8_or_gbk_is_detected_and_imported(db, tmp_path, encoding):
    path = write_csv(tmp_path / "h.csv", [row("7001", community="幸福家园", owner="张伟", phone="024-23456789"),
                                          row("7002", community="阳光里", owner="李娜", area="120.5")], encoding)

    result = import_households(path)
    db.session.commit()

    assert (result.created, result.errors) == (2, [])
    h = household(db, "7001")
    assert (h.community.name, h.owner_name, h.owner_phone) == ("幸福家园", "张伟", "+862423456789")
    assert household(db, "7002").area_m2 == Decimal("120.50")


def test_csv_rows_are_reported_by_their_line(db, tmp_path):
    path = write_csv(tmp_path / "h.csv", [row("7101"), row("7102", phone="1234")], "gbk")

    result = import_households(path)

    assert [(e.row, e.column, e.value) for e in result.errors] == [(3, "联系电话", "1234")]


def test_export_writes_the_template_and_imports_back_unchanged(db, tmp_path, clean_file):
    from app.imports.households import TEMPLATE_HEADER, export_households
    import_households(write_xlsx(tmp_path / "x.xlsx", [row("8001", phone="024-23456789转8001")]))
    import_households(clean_file)
    db.session.commit()

    for name in ("export.xlsx", "export.csv"):
        out = tmp_path / name
        assert export_households(out) == 4
        if name.endswith(".xlsx"):
            sheet = list(load_workbook(out).active.values)
            assert sheet[0] == TEMPLATE_HEADER and sheet[1][0] == "10010001"
            assert sheet[4][9] == "024-2345 6789 转8001"
        again = import_households(out)
        assert (again.created, again.updated, again.unchanged, again.errors) == (0, 0, 4, [])


def test_cli_export_households(db, runner, tmp_path, clean_file):
    import_households(clean_file)
    db.session.commit()
    out = tmp_path / "out.csv"

    result = runner.invoke(args=["export-households", str(out)])

    assert result.exit_code == 0 and "已导出 3 户" in result.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel shows the Chinese
    assert runner.invoke(args=["export-households", str(tmp_path / "out.txt")]).exit_code != 0
