"""Import households (户) from an .xlsx or .csv sheet: validate every row, then write in one go.

Sheets come as heating companies keep them (docs/import-households.md lists every accepted
header and format): many header aliases (住户编号, 用户姓名, 采暖面积, 楼栋名称, 热站名称, 手机号码 …),
merged cells (a community merged down over its buildings: filled down), one 地址 column
instead of 小区/楼号/单元/室, full-width characters (NFKC, ``app.text.clean_text``), phone
numbers in any form people write them (``app.phones``, stored as E.164, extension apart),
CSV in UTF-8 (with or without BOM) or GBK/GB18030.

The work is done in two passes so that nothing is written before the whole file is known:

1. read: stream the sheet (openpyxl read_only; merged ranges read from the sheet's XML), check
   every cell, collect a report of problems as (row, column header, value, Chinese message);
2. write: create the missing districts, stations and communities, then bulk insert new
   households and bulk update changed ones, in chunks, inside the caller's transaction.

``import_households`` never commits: the caller commits when ``result.written`` is true and
rolls back on any exception, so a crash leaves none of the batch behind (one transaction;
~100k rows fit comfortably). Existing rows are preloaded into dicts: no SELECT per row.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zipfile import BadZipFile

from openpyxl import Workbook, load_workbook
from openpyxl.utils.cell import range_boundaries
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import insert, select, update
from sqlalchemy.orm import selectinload

from app import phones
from app.errors import ValidationError
from app.extensions import db
from app.models import Community, District, Household, HouseholdStatus, Station
from app.text import clean_text


class ImportMode:
    ALL_OR_NOTHING = "all_or_nothing"  # any invalid row: write nothing
    SKIP_INVALID = "skip_invalid"      # write the good rows, report the rejected ones
    ALL = (ALL_OR_NOTHING, SKIP_INVALID)


# field -> accepted header texts (after _normalise_header); the first one is the canonical header.
# When a sheet has two aliases of one field (建筑面积 and 计费面积), the one listed first is used.
COLUMNS: dict[str, tuple[str, ...]] = {
    "account_no": ("户号", "用户号", "用户编号", "住户编号", "住户号", "户编号", "缴费户号", "缴费号", "客户编号", "客户号",
                   "用户代码", "用户编码", "热用户编号"),
    "district": ("区", "区县", "区/县", "行政区", "所属区", "所属区县", "行政区域", "区域"),
    "community": ("小区", "小区名称", "小区名", "所属小区", "住宅小区", "社区", "楼盘", "楼盘名称"),
    "building": ("楼号", "楼栋", "楼栋号", "楼栋名称", "楼号名称", "栋号", "幢号", "楼座", "栋", "幢"),
    "unit": ("单元", "单元号", "单元名称"),
    "room": ("室", "房号", "室号", "门牌号", "房间号", "户室号", "房间", "门牌"),
    "station": ("换热站", "换热站名称", "换热站编号", "热力站", "热力站名称", "热站", "热站名称", "所属换热站", "所属热站"),
    "area": ("供热面积", "计费面积", "收费面积", "采暖面积", "供暖面积", "面积", "建筑面积", "使用面积"),
    "owner": ("户主姓名", "户主", "用户姓名", "用户名称", "姓名", "业主姓名", "业主", "客户姓名", "户名"),
    "phone": ("联系电话", "手机号码", "手机号", "手机", "电话", "电话号码", "联系手机", "移动电话", "联系方式", "固定电话",
              "联系人电话"),
    "status": ("状态", "用户状态", "供热状态", "供暖状态"),
    "address": ("地址", "住址", "房屋地址", "用户地址", "详细地址", "房屋坐落", "坐落"),
}
REQUIRED = ("account_no", "district", "community", "building", "unit", "room", "area", "owner")
# What one 地址 column can stand in for (district only when it names one: 和平区幸福小区3-2-501).
ADDRESS_PARTS = ("district", "community", "building", "unit", "room")
LABELS = {name: aliases[0] for name, aliases in COLUMNS.items()}
# Column widths of the model, so a too-long value is a row error rather than a database error.
MAX_LENGTH = {"account_no": 20, "district": 40, "community": 60, "building": 20, "unit": 10, "room": 10,
              "station": 60, "owner": 40}
STATUS_VALUES = {
    "正常": HouseholdStatus.ACTIVE, "报停": HouseholdStatus.SUSPENDED, "销户": HouseholdStatus.CLOSED,
    HouseholdStatus.ACTIVE: HouseholdStatus.ACTIVE, HouseholdStatus.SUSPENDED: HouseholdStatus.SUSPENDED,
    HouseholdStatus.CLOSED: HouseholdStatus.CLOSED,
}
MAX_AREA = Decimal("2000")
CHUNK = 1000
HEADER_SEARCH_ROWS = 10  # the header may sit below a title row or two

_ACCOUNT_RE = re.compile(r"[A-Za-z0-9-]+")
_STATION_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,20}")
# Unit suffixes people type although the address adds them (地址 = …3号楼2单元101室).
_SUFFIXES = {"building": ("号楼", "栋", "幢", "号", "楼", "座"), "unit": ("单元",), "room": ("室", "号")}

# One address: [city] [district] community building unit room, as utilities write it:
# 幸福小区3号楼2单元501, 幸福小区3栋2单元501室, 幸福小区 3-2-501, 和平区幸福小区3号楼2单元501室.
_BUILDING = r"(?P<building>[0-9A-Za-z]+)\s*(?:号楼|号|栋|幢|楼|座)"
_UNIT = r"(?P<unit>[0-9A-Za-z]+)\s*单元"
_ROOM = r"(?P<room>[0-9A-Za-z]+)\s*(?:室|号)?"
_CITY = r"^(?:[^\s区县市]{1,10}市\s*)?"
_DISTRICT = r"(?P<district>[^\s区县市]{1,10}(?:区|县|旗))\s*"
_COMMUNITY = r"(?P<community>.+?)\s*"
_PARTS = (_BUILDING + r"\s*" + _UNIT + r"\s*" + _ROOM + "$",
          r"(?P<building>\d+)\s*-\s*(?P<unit>\d+)\s*-\s*(?P<room>\d+)\s*(?:室|号)?$")
# With a district first, then without (幸福小区… names no district: 小区 is not one).
_ADDRESS_FORMS = tuple(re.compile(_CITY + place + _COMMUNITY + parts)
                       for place in (_DISTRICT, "") for parts in _PARTS)
_NOT_DISTRICTS = ("小区", "社区", "园区", "校区", "街区", "厂区", "花园区")

# The fields an update may change, in Household column names.
_COMPARED = ("district_id", "community_id", "building", "unit", "room", "station_id", "area_m2",
             "owner_name", "owner_phone", "owner_phone_ext", "status")


@dataclass(frozen=True)
class RowError:
    row: int          # row number as Excel shows it
    column: str       # the column header as written in the file
    value: str        # the cell as text
    message: str      # Chinese, for the staff who fix the file


@dataclass
class ImportResult:
    total: int = 0                 # non-empty data rows read
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    districts_created: int = 0
    communities_created: int = 0
    stations_created: int = 0
    written: bool = False          # rows were written to the session: the caller should commit
    dry_run: bool = False

    @property
    def rejected_rows(self) -> list[int]:
        """Excel row numbers of the rows that were not imported."""
        return sorted({e.row for e in self.errors})

    @property
    def ok(self) -> bool:
        return not self.errors


# A progress factory has click.progressbar's shape: progress(length=..., label=...) returns a
# context manager whose update(n) advances the bar.
ProgressFactory = Callable[..., Any]


def import_households(path: str | Path, *, mode: str = ImportMode.ALL_OR_NOTHING,
                      update_existing: bool = True, dry_run: bool = False,
                      progress: ProgressFactory | None = None) -> ImportResult:
    """Validate the sheet at ``path`` and write its households to the current session.

    Nothing is written when ``dry_run`` is set, or in ALL_OR_NOTHING mode when any row is
    invalid. Does not commit: commit when ``result.written``, roll back on exceptions.
    Raises ValidationError (Chinese message) when the file itself cannot be used.
    """
    if mode not in ImportMode.ALL:
        raise ValueError(f"unknown import mode: {mode}")
    result = ImportResult(dry_run=dry_run)
    existing = _load_existing_households()
    rows = _read_rows(Path(path), existing, update_existing, result, progress)

    if result.errors and mode == ImportMode.ALL_OR_NOTHING:
        return result
    _Writer(rows, existing, result, dry_run=dry_run, progress=progress).run()
    return result


# --- pass 1: read and validate ---------------------------------------------------------------

@dataclass
class _Row:
    row: int
    account_no: str
    district: str
    community: str
    building: str
    unit: str
    room: str
    station: str | None   # None: not given (new household takes the community's station)
    area: Decimal
    owner: str
    phone: str | None     # E.164; None: not given (kept on update)
    phone_ext: str | None
    status: str | None    # None: not given (正常 for new, kept on update)


def _read_rows(path: Path, existing: dict, update_existing: bool, result: ImportResult,
               progress: ProgressFactory | None) -> list[_Row]:
    with _open_sheet(path) as sheet:
        header_row, columns = _find_header(sheet.rows)
        total = max(sheet.max_row - header_row, 0)
        seen: dict[str, int] = {}
        good: list[_Row] = []
        with _bar(progress, total, "校验") as bar:
            for row_no, values in enumerate(sheet.rows, start=header_row + 1):
                bar.update(1)
                if all(_text(v) == "" for v in values):
                    continue  # blank lines (often at the end of a sheet) are not rows
                cells = {name: (values[i] if i < len(values) else None) for name, (i, _) in columns.items()}
                result.total += 1
                parsed = _check_row(row_no, cells, columns, seen, existing, update_existing, result.errors)
                if parsed is not None:
                    good.append(parsed)
        return good


class _Sheet:
    """Rows of the first sheet as lists of values, whatever the file: .xlsx (merged cells filled
    with their top-left value) or .csv (UTF-8 with or without BOM, GBK/GB18030)."""

    def __init__(self, rows: Iterable[Sequence], max_row: int, close: Callable[[], None] = lambda: None):
        self.rows = iter(rows)
        self.max_row = max_row
        self._close = close

    def __enter__(self) -> _Sheet:
        return self

    def __exit__(self, *exc) -> None:
        self._close()


def _open_sheet(path: Path) -> _Sheet:
    if not path.is_file():
        raise ValidationError(f"文件不存在：{path}")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return _csv_sheet(path)
    if suffix not in (".xlsx", ".xlsm"):
        raise ValidationError(f"只支持 .xlsx 或 .csv 文件（.xls 请在 Excel 中“另存为 .xlsx”）：{path.name}")
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, BadZipFile, KeyError, OSError) as exc:
        raise ValidationError(f"无法读取文件，不是有效的 .xlsx 表格：{path.name}") from exc
    ws = wb.active
    merged = _merged_ranges(wb, ws)
    rows = ws.iter_rows(values_only=True)
    return _Sheet(_fill_merged(rows, merged) if merged else rows, ws.max_row or 0, wb.close)


def _merged_ranges(wb, ws) -> list[tuple[int, int, int, int]]:
    """(min_col, min_row, max_col, max_row) of each merged range of a read-only sheet.

    openpyxl's read-only mode streams cells and skips <mergeCells> (they follow the cell data
    in the sheet's XML), so they are read from the XML here: one extra scan of the part,
    much cheaper than opening the workbook in full mode."""
    try:
        with wb._archive.open(ws._worksheet_path) as part:
            xml = part.read()
    except (AttributeError, KeyError):  # not a read-only sheet as we know it: no merges seen
        return []
    found = _MERGE_CELL.findall(xml, xml.rfind(b"</sheetData>") if b"</sheetData>" in xml else 0)
    return [range_boundaries(ref.decode()) for ref in found]


_MERGE_CELL = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')


def _fill_merged(rows: Iterable[tuple], merged: list[tuple[int, int, int, int]]) -> Iterable[list]:
    """Each cell of a merged range takes the range's top-left value, as Excel shows it."""
    starts: dict[int, list] = {}
    for rng in merged:
        starts.setdefault(rng[1], []).append(rng)
    active: list[tuple[tuple[int, int, int, int], Any]] = []
    for row_no, values in enumerate(rows, start=1):
        values = list(values)
        active = [(rng, value) for rng, value in active if rng[3] >= row_no]
        for rng in starts.get(row_no, ()):
            active.append((rng, values[rng[0] - 1] if rng[0] - 1 < len(values) else None))
        for (min_col, _, max_col, _), value in active:
            if len(values) < max_col:
                values.extend([None] * (max_col - len(values)))
            for col in range(min_col - 1, max_col):
                values[col] = value
        yield values


def _csv_sheet(path: Path) -> _Sheet:
    data = path.read_bytes()
    text = None
    for encoding in ("utf-8-sig", "gb18030"):  # GB18030 reads GBK and GB2312 too
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        raise ValidationError(f"无法识别 CSV 文件的编码（应为 UTF-8 或 GBK）：{path.name}")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    lines = text.splitlines()
    return _Sheet(csv.reader(lines, dialect), len(lines))


def _find_header(rows_iter) -> tuple[int, dict[str, tuple[int, str]]]:
    """Returns the header's row number and field -> (column index, header text as written).

    Of two aliases of one field, the one listed first in COLUMNS is used (the other column is
    ignored); the same header twice is refused."""
    for row_no in range(1, HEADER_SEARCH_ROWS + 1):
        values = next(rows_iter, None)
        if values is None:
            break
        found: dict[str, list[tuple[int, int, str]]] = {}  # field -> [(alias rank, index, text)]
        for i, value in enumerate(values):
            header = _normalise_header(value)
            name = _HEADER_FIELDS.get(header)
            if name is not None:
                found.setdefault(name, []).append((COLUMNS[name].index(header), i, _text(value)))
        if "account_no" not in found:
            continue
        duplicated = [text for hits in found.values() for (rank, _, text) in hits
                      if sum(1 for other in hits if other[0] == rank) > 1]
        if duplicated:
            raise ValidationError(f"第{row_no}行表头有重复的列：{'、'.join(dict.fromkeys(duplicated))}")
        columns = {name: min(hits)[1:] for name, hits in found.items()}
        missing = [LABELS[name] for name in REQUIRED if name not in columns
                   and not ("address" in columns and name in ADDRESS_PARTS)]
        if missing:
            raise ValidationError(f"表头缺少必填列：{'、'.join(missing)}（也可用一列“地址”代替小区、楼号、单元、室）"
                                  if set(missing) & set(LABELS[n] for n in ADDRESS_PARTS)
                                  else f"表头缺少必填列：{'、'.join(missing)}")
        return row_no, columns
    raise ValidationError(f"前{HEADER_SEARCH_ROWS}行中找不到表头（需要包含“户号”列或其别名，如“用户编号”“住户编号”）")


def _normalise_header(value: Any) -> str:
    text = re.sub(r"[（(][^）)]*[）)]", "", _text(value))  # drop units: 供热面积(㎡)
    return re.sub(r"[\s*＊:：]", "", text)


_HEADER_FIELDS = {alias: name for name, aliases in COLUMNS.items() for alias in aliases}


def parse_address(text: str) -> dict[str, str] | None:
    """Split one address into district (when written), community, building, unit and room, or
    None when it is not one of the accepted forms (docs/import-households.md)."""
    text = re.sub(r"\s*[-－—–]\s*", "-", clean_text(text))
    for form in _ADDRESS_FORMS:
        match = form.match(text)
        if match is None or not match["community"].strip():
            continue
        parts = {k: v.strip() for k, v in match.groupdict().items() if v}
        if parts.get("district", "").endswith(_NOT_DISTRICTS):
            continue
        return parts
    return None


ADDRESS_MESSAGE = "地址无法拆分为小区、楼号、单元、室（可写作“幸福小区3号楼2单元501室”或“幸福小区 3-2-501”，或分列填写）"


def _check_row(row_no: int, cells: dict[str, Any], columns: dict[str, tuple[int, str]],
               seen: dict[str, int], existing: dict, update_existing: bool,
               errors: list[RowError]) -> _Row | None:
    problems: list[RowError] = []

    def fail(name: str, message: str) -> None:
        problems.append(RowError(row_no, columns[name][1], _text(cells.get(name)), message))

    from_address: dict[str, str] = {}
    if "address" in columns and any(name not in columns or not _text(cells[name]) for name in ADDRESS_PARTS):
        address = _text(cells["address"])
        if address:
            from_address = parse_address(address) or {}
            if not from_address:
                fail("address", ADDRESS_MESSAGE)

    values: dict[str, Any] = {}
    for name in ("account_no", "district", "community", "building", "unit", "room", "owner", "station"):
        text = _text(cells[name]) if name in columns else ""
        if not text and name in from_address:
            text = from_address[name]
        for suffix in _SUFFIXES.get(name, ()):
            if text != suffix and text.endswith(suffix):
                text = text.removesuffix(suffix).strip()
                break
        if not text:
            if name in REQUIRED and not (problems and name in ADDRESS_PARTS and "address" in columns):
                if name in columns:
                    fail(name, f"{LABELS[name]}不能为空")
                elif "address" in columns:
                    fail("address", f"地址中没有{LABELS[name]}" + ("，且表中没有“区”列" if name == "district" else ""))
            values[name] = None
        elif len(text) > MAX_LENGTH[name]:
            fail(name if name in columns else "address", f"{LABELS[name]}不能超过{MAX_LENGTH[name]}个字符")
        else:
            values[name] = text

    account_no = values["account_no"]
    if account_no is not None:
        if not _ACCOUNT_RE.fullmatch(account_no):
            fail("account_no", "户号只能包含字母、数字和连字符")
        elif account_no in seen:
            fail("account_no", f"户号与第{seen[account_no]}行重复")
        else:
            seen[account_no] = row_no
            if account_no in existing and not update_existing:
                fail("account_no", "户号已存在，本次导入不允许更新已有用户")

    area, area_problem = _parse_area(cells["area"])
    if area_problem:
        fail("area", area_problem)

    phone = None
    if "phone" in columns and _text(cells["phone"]):
        try:
            phone = phones.parse(cells["phone"])
        except phones.PhoneError:
            fail("phone", PHONE_MESSAGE)

    status = None
    if "status" in columns and _text(cells["status"]):
        status = STATUS_VALUES.get(_text(cells["status"]))
        if status is None:
            fail("status", "状态只能是：正常、报停、销户")

    if problems:
        errors.extend(problems)
        return None
    return _Row(row=row_no, account_no=account_no, district=values["district"], community=values["community"],
                building=values["building"], unit=values["unit"], room=values["room"], station=values["station"],
                area=area, owner=values["owner"], phone=phone.e164 if phone else None,
                phone_ext=phone.extension if phone else None, status=status)


PHONE_MESSAGE = "联系电话格式不正确" + phones.HINT


def _parse_area(value: Any) -> tuple[Decimal | None, str | None]:
    text = _text(value)
    if not text:
        return None, "供热面积不能为空"
    if isinstance(value, bool):
        return None, "供热面积必须是数字"
    text = re.sub(r"\s*(㎡|m²|m2|平方米|平米)$", "", text, flags=re.IGNORECASE)
    try:
        area = Decimal(text)
    except InvalidOperation:
        return None, "供热面积必须是数字"
    if not area.is_finite():
        return None, "供热面积必须是数字"
    if isinstance(value, float) and area != area.quantize(Decimal("0.01")):
        # Excel stores 89.5 * 1.1 as 98.45000000000002: accept float noise, not a third decimal.
        rounded = area.quantize(Decimal("0.01"))
        if abs(area - rounded) < Decimal("0.000001"):
            area = rounded
    if area <= 0:
        return None, "供热面积必须大于0"
    if area > MAX_AREA:
        return None, f"供热面积不能超过{MAX_AREA}平方米"
    if area != area.quantize(Decimal("0.01")):
        return None, "供热面积最多保留两位小数"
    return area.quantize(Decimal("0.01")), None


def _text(value: Any) -> str:
    """A cell as text: NFKC (full-width ５０１ is 501), numbers without a spurious '.0',
    whitespace trimmed and collapsed."""
    if value is None:
        return ""
    if isinstance(value, str) and value.isascii():
        return " ".join(value.split())  # the common case, without NFKC's cost
    return clean_text(value)


# --- pass 2: plan and write ------------------------------------------------------------------

def _load_existing_households() -> dict[str, dict]:
    """account_no -> {"id": ..., compared fields...} for every household, in one query."""
    cols = [Household.account_no, Household.id] + [getattr(Household, name) for name in _COMPARED]
    return {r.account_no: r._asdict() for r in db.session.execute(select(*cols))}


class _New:
    """A district/community/station that does not exist yet; replaced by its id when written."""

    __slots__ = ("key", "id")

    def __init__(self, key):
        self.key = key
        self.id: int | None = None


class _Writer:
    def __init__(self, rows: list[_Row], existing: dict[str, dict], result: ImportResult, *,
                 dry_run: bool, progress: ProgressFactory | None):
        self.rows = rows
        self.existing = existing
        self.result = result
        self.dry_run = dry_run
        self.progress = progress
        self.districts: dict[str, int | _New] = dict(db.session.execute(select(District.name, District.id)).all())
        # (district name, community name) -> [id or _New, station id or _New or None, district ref]
        self.communities: dict[tuple[str, str], list] = {
            (d_name, c_name): [c_id, st_id, d_id]
            for c_id, c_name, st_id, d_id, d_name in db.session.execute(
                select(Community.id, Community.name, Community.station_id, District.id, District.name)
                .join(District, Community.district_id == District.id))
        }
        self.station_codes: dict[str, int | _New] = {}
        self.station_names: dict[str, int | _New] = {}
        for st_id, code, name in db.session.execute(select(Station.id, Station.code, Station.name)):
            self.station_codes[code] = st_id
            self.station_names[name] = st_id
        self.new_districts: list[_New] = []
        self.new_stations: list[_New] = []
        self.new_communities: list[tuple[_New, list]] = []
        self.community_station_set: list[list] = []  # existing communities whose station gets set

    def run(self) -> None:
        inserts, updates = self._plan()
        r = self.result
        r.created, r.updated = len(inserts), len(updates)
        r.unchanged = len(self.rows) - r.created - r.updated
        r.districts_created = len(self.new_districts)
        r.stations_created = len(self.new_stations)
        r.communities_created = len(self.new_communities)
        if self.dry_run or not (inserts or updates or self.community_station_set):
            return
        self._write_areas()
        with _bar(self.progress, len(inserts) + len(updates), "写入") as bar:
            for chunk in _chunks(inserts, CHUNK):
                db.session.execute(insert(Household), [_resolved(values) for values in chunk])
                bar.update(len(chunk))
            for chunk in _chunks(updates, CHUNK):
                db.session.execute(update(Household), [_resolved(values) for values in chunk])
                bar.update(len(chunk))
        r.written = True

    # planning resolves names to ids (or _New placeholders) without touching the database
    def _plan(self) -> tuple[list[dict], list[dict]]:
        for row in self.rows:  # first, which station each new or station-less community gets
            if row.station is not None:
                community = self._community(row)
                if community[1] is None:
                    community[1] = self._station(row.station)
                    if not isinstance(community[0], _New):
                        self.community_station_set.append(community)
        inserts, updates = [], []
        for row in self.rows:
            community = self._community(row)
            current = self.existing.get(row.account_no)
            values = {
                "district_id": community[2], "community_id": community[0],
                "building": row.building, "unit": row.unit, "room": row.room, "area_m2": row.area,
                "owner_name": row.owner,
            }
            if row.station is not None:
                values["station_id"] = self._station(row.station)
            if row.phone is not None:
                values["owner_phone"], values["owner_phone_ext"] = row.phone, row.phone_ext
            if row.status is not None:
                values["status"] = row.status
            if current is None:
                values.setdefault("station_id", community[1])
                values.setdefault("owner_phone", None)
                values.setdefault("owner_phone_ext", None)
                values.setdefault("status", HouseholdStatus.ACTIVE)
                inserts.append({"account_no": row.account_no, **values})
            elif any(current[name] != value for name, value in values.items()):
                updates.append({"id": current["id"], **values})
        return inserts, updates

    def _district(self, name: str) -> int | _New:
        ref = self.districts.get(name)
        if ref is None:
            ref = self.districts[name] = _New(name)
            self.new_districts.append(ref)
        return ref

    def _community(self, row: _Row) -> list:
        key = (row.district, row.community)
        community = self.communities.get(key)
        if community is None:
            ref = _New(key)
            community = self.communities[key] = [ref, None, self._district(row.district)]
            self.new_communities.append((ref, community))
        return community

    def _station(self, value: str) -> int | _New:
        ref = self.station_codes.get(value) or self.station_names.get(value)
        if ref is None:
            ref = self.station_names[value] = _New(value)
            self.new_stations.append(ref)
        return ref

    def _write_areas(self) -> None:
        for ref in self.new_districts:
            district = District(name=ref.key)
            db.session.add(district)
            db.session.flush()
            ref.id = district.id
        for ref in self.new_stations:
            station = Station(code=self._new_station_code(ref.key), name=ref.key)
            db.session.add(station)
            db.session.flush()
            ref.id = station.id
        for ref, (_, station_ref, district_ref) in self.new_communities:
            community = Community(name=ref.key[1], district_id=_id(district_ref), station_id=_id(station_ref))
            db.session.add(community)
            db.session.flush()
            ref.id = community.id
        for community_id, station_ref, _ in self.community_station_set:
            db.session.execute(update(Community).where(Community.id == community_id)
                               .values(station_id=_id(station_ref)))

    def _new_station_code(self, value: str) -> str:
        """The value itself when it looks like a free code (HR012), else the next free ZN0001…"""
        code = value
        if not _STATION_CODE_RE.fullmatch(value) or value in self.station_codes:
            n = 1
            while f"ZN{n:04d}" in self.station_codes:
                n += 1
            code = f"ZN{n:04d}"
        self.station_codes[code] = self.station_names[value]
        return code


def _id(ref: int | _New | None) -> int | None:
    return ref.id if isinstance(ref, _New) else ref


def _resolved(values: dict) -> dict:
    return {name: _id(value) for name, value in values.items()}


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _bar(progress: ProgressFactory | None, length: int, label: str):
    if progress is None or length <= 0:
        return nullcontext(_NoBar())
    return progress(length=length, label=label)


# --- report and template ---------------------------------------------------------------------

REPORT_HEADER = ("行号", "列", "值", "问题")


def write_report(errors: list[RowError], path: str | Path) -> None:
    """Write the problems to .xlsx or .csv (UTF-8 with BOM, so Excel shows the Chinese)."""
    path = Path(path)
    rows = [(e.row, e.column, e.value, e.message) for e in errors]
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8-sig") as f:
            writer = csv.writer(f)
            writer.writerow(REPORT_HEADER)
            writer.writerows(rows)
    elif path.suffix.lower() == ".xlsx":
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("导入问题")
        ws.append(REPORT_HEADER)
        for row in rows:
            ws.append(row)
        wb.save(path)
    else:
        raise ValidationError(f"报告文件只支持 .xlsx 或 .csv：{path.name}")


TEMPLATE_HEADER = ("户号", "区", "小区", "楼号", "单元", "室", "换热站", "供热面积(㎡)", "户主姓名", "联系电话", "状态")
TEMPLATE_EXAMPLE = ("10010001", "和平区", "幸福家园", "3", "2", "101", "幸福换热站", 89.5, "张伟", "13800138000",
                    "正常")


def write_template(path: str | Path) -> None:
    """An empty import sheet: the header row and one example row (to be replaced)."""
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise ValidationError(f"模板文件名需以 .xlsx 结尾：{path.name}")
    wb = Workbook()
    ws = wb.active
    ws.title = "用户导入"
    ws.append(TEMPLATE_HEADER)
    ws.append(TEMPLATE_EXAMPLE)
    for cell in ws[1]:
        ws.column_dimensions[cell.column_letter].width = 14
    # Account numbers and phones are text: keep Excel from turning 0101 into 101.
    for letter in ("A", "J"):
        for row in range(2, 1001):
            ws[f"{letter}{row}"].number_format = "@"
    wb.save(path)


# --- export ----------------------------------------------------------------------------------

EXPORT_STATUS = {value: label for label, value in STATUS_VALUES.items() if label != value}


def export_rows(where: Sequence = ()) -> Iterable[tuple]:
    """Every household (or those matching the conditions ``where``, e.g. the console's filters)
    as a row of the import template (same header, same order), by 户号; streamed in chunks."""
    query = (select(Household).where(*where)
             .options(selectinload(Household.district), selectinload(Household.community),
                      selectinload(Household.station))
             .order_by(Household.account_no).execution_options(yield_per=CHUNK))
    for h in db.session.scalars(query):
        yield (h.account_no, h.district.name, h.community.name, h.building, h.unit, h.room,
               h.station.name if h.station else None, float(h.area_m2), h.owner_name,
               phones.display(h.owner_phone, h.owner_phone_ext) or None, EXPORT_STATUS.get(h.status, h.status))


def export_households(path: str | Path, *, where: Sequence = ()) -> int:
    """Write every household (or those matching ``where``) to .xlsx or .csv (UTF-8 with BOM)
    in the import template; the file imports back unchanged. Returns the number written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise ValidationError(f"导出文件只支持 .xlsx 或 .csv：{path.name}")
    count = 0
    if suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8-sig") as f:
            writer = csv.writer(f)
            writer.writerow(TEMPLATE_HEADER)
            for row in export_rows(where):
                writer.writerow(row)
                count += 1
        return count
    return write_export_xlsx(path, where=where)


def write_export_xlsx(target, *, where: Sequence = ()) -> int:
    """The .xlsx of ``export_households`` written to a path or a binary file object (the
    console streams it from a temporary file). Write-only workbook: memory stays flat."""
    count = 0
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("用户导入")
    ws.append(TEMPLATE_HEADER)
    for row in export_rows(where):
        ws.append(row)
        count += 1
    wb.save(target)
    return count
