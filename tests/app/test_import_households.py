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
