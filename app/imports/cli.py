"""`flask import-households`: a thin wrapper around app.imports.households that commits."""
from __future__ import annotations

import unicodedata
from pathlib import Path

import click
from flask.cli import with_appcontext

from app.errors import ValidationError
from app.extensions import db
from app.imports.households import (
    ImportMode, ImportResult, RowError, export_households, import_households, write_report, write_template,
)

MAX_PRINTED_ERRORS = 200  # the full list goes to --report


@click.command("import-households")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--all-or-nothing/--skip-invalid", "all_or_nothing", default=True,
              help="Default: any invalid row rejects the whole file. --skip-invalid imports the good rows.")
@click.option("--update/--no-update", "update_existing", default=True,
              help="Update households whose 户号 already exists (default), or reject those rows.")
@click.option("--dry-run", is_flag=True, help="Validate and report, write nothing.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the problems to this .xlsx or .csv file.")
@click.option("--template", "template_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write an empty .xlsx template (header and one example row) and exit.")
@with_appcontext
def import_households_command(file: Path | None, all_or_nothing: bool, update_existing: bool, dry_run: bool,
                              report_path: Path | None, template_path: Path | None) -> None:
    """Import households (户) from an .xlsx or .csv (UTF-8/GBK) file; see docs/import-households.md."""
    try:
        if template_path is not None:
            write_template(template_path)
            click.echo(f"已生成导入模板：{template_path}")
            return
        if file is None:
            raise click.UsageError("请指定要导入的 .xlsx 或 .csv 文件（或用 --template 生成模板）")
        if report_path is not None and report_path.suffix.lower() not in (".xlsx", ".csv"):
            raise click.UsageError(f"报告文件只支持 .xlsx 或 .csv：{report_path.name}")
        mode = ImportMode.ALL_OR_NOTHING if all_or_nothing else ImportMode.SKIP_INVALID
        try:
            result = import_households(file, mode=mode, update_existing=update_existing, dry_run=dry_run,
                                       progress=_progressbar)
            if result.written:
                db.session.commit()
        except BaseException:
            db.session.rollback()  # nothing of the batch stays behind
            raise
        if report_path is not None:
            write_report(result.errors, report_path)
    except ValidationError as exc:
        raise click.ClickException(exc.message) from exc

    _echo_errors(result.errors)
    if report_path is not None:
        click.echo(f"问题报告已写入：{report_path}")
    _echo_summary(result, mode)
    if result.errors and mode == ImportMode.ALL_OR_NOTHING:
        raise click.exceptions.Exit(1)


def _progressbar(length: int, label: str):
    return click.progressbar(length=length, label=label)


def _echo_summary(result: ImportResult, mode: str) -> None:
    rejected = len(result.rejected_rows)
    if result.errors and mode == ImportMode.ALL_OR_NOTHING:
        prefix = "试运行：" if result.dry_run else ""
        click.echo(f"{prefix}导入被拒绝：共 {result.total} 行，{rejected} 行有问题，未写入任何数据。"
                   "请修改后重新导入，或使用 --skip-invalid 只导入正确的行。", err=True)
        return
    prefix = "试运行（未写入）" if result.dry_run else "导入完成"
    click.echo(f"{prefix}：共 {result.total} 行，新增 {result.created}，更新 {result.updated}，"
               f"未变 {result.unchanged}，拒绝 {rejected}；"
               f"新建区 {result.districts_created}、小区 {result.communities_created}、"
               f"换热站 {result.stations_created}。")


def _echo_errors(errors: list[RowError]) -> None:
    if not errors:
        return
    rows = [("行号", "列", "值", "问题")]
    rows += [(str(e.row), e.column, _clip(e.value), e.message) for e in errors[:MAX_PRINTED_ERRORS]]
    widths = [max(_width(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        cells = [_pad(r[i], widths[i]) for i in range(3)] + [r[3]]
        click.echo("  ".join(cells))
    if len(errors) > MAX_PRINTED_ERRORS:
        click.echo(f"……另有 {len(errors) - MAX_PRINTED_ERRORS} 条问题未显示，请用 --report 导出完整报告。")


def _width(text: str) -> int:
    """Display width: Chinese characters take two columns in a terminal."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _clip(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


@click.command("export-households")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def export_households_command(file: Path) -> None:
    """Export every household to .xlsx or .csv in the import template (imports back unchanged)."""
    try:
        count = export_households(file)
    except ValidationError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"已导出 {count} 户：{file}")
