"""A catalogue of approval items from a spreadsheet (CSV or XLSX), as departments keep them.

The first row names the columns, in Chinese or English; each following row is one item. Lists
(stages, documents) are separated by 、 ， , ； or ;. Stages may be written 受理 承办 审核 审批 办结 or
accept handle review approve complete. Every row is checked before any is stored: one bad cell refuses
the whole file, naming its row and column (`rows[3].legal_days`: the third item, the sheet's fourth row).

    部门 department | 事项编码 code | 事项名称 name | 法定时限 legal_days | 承诺时限 promised_days
    环节 stages | 收费标准 fee_limit_yuan | 申请材料 required_documents
    审核审批分离 separate_review_and_approval (是/否) | 最长暂停天数 max_suspension_days
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from typing import Any

import msgspec

from efficiency.items import ApprovalItem, ItemProblem, Stage, check_item

CSV, XLSX = "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_ITEMS = 2000  # a county's whole catalogue is some 300
COLUMNS = {
    "department": ("部门", "department"), "code": ("事项编码", "编码", "code"), "name": ("事项名称", "名称", "name"),
    "legal_days": ("法定时限", "legal_days"), "promised_days": ("承诺时限", "promised_days"),
    "stages": ("环节", "stages"), "fee_limit_yuan": ("收费标准", "fee_limit_yuan"),
    "required_documents": ("申请材料", "required_documents"),
    "separate_review_and_approval": ("审核审批分离", "separate_review_and_approval"),
    "max_suspension_days": ("最长暂停天数", "max_suspension_days"),
}
REQUIRED = ("department", "code", "name", "legal_days", "promised_days")
STAGE_NAMES = {"受理": Stage.ACCEPT, "承办": Stage.HANDLE, "审核": Stage.REVIEW, "审批": Stage.APPROVE,
               "办结": Stage.COMPLETE, **{s.value: s for s in Stage}}
YES, NO = {"是", "yes", "true", "1", "y"}, {"否", "no", "false", "0", "n"}
_LIST = re.compile(r"\s*[、，,；;]\s*")


class FileProblem(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def items_from(kind: str, data: bytes) -> list[ApprovalItem]:
    """The items a CSV or XLSX file holds, every one checked; FileProblem names the first bad cell."""
    rows = _csv_rows(data) if kind == CSV else _xlsx_rows(data)
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise FileProblem("body", "the file has no rows")
    columns = _columns(rows[0])
    if len(rows) - 1 > MAX_ITEMS:
        raise FileProblem("body", f"at most {MAX_ITEMS} items in one file")
    if len(rows) == 1:
        raise FileProblem("body", "the file names its columns but holds no items")
    items, codes = [], set()
    for n, row in enumerate(rows[1:], start=1):
        item = _item(n, {name: row[i].strip() if i < len(row) else "" for name, i in columns.items()})
        if item.code in codes:
            raise FileProblem(f"rows[{n}].code", f"item {item.code} is in the file twice")
        codes.add(item.code)
        items.append(item)
    return items


def _csv_rows(data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")  # spreadsheets save UTF-8 with a byte-order mark
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")  # what Excel on a Chinese desktop saves
        except UnicodeDecodeError:
            raise FileProblem("body", "the CSV is neither UTF-8 nor GB 18030 text") from None
    try:
        return list(csv.reader(io.StringIO(text)))
    except csv.Error as error:
        raise FileProblem("body", f"the CSV cannot be read: {error}") from None


def _xlsx_rows(data: bytes) -> list[list[str]]:
    import openpyxl  # only for XLSX files: it takes a while to import
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as error:
        raise FileProblem("body", f"the file is not an XLSX workbook ({type(error).__name__})") from None
    try:
        sheet = book.worksheets[0]
        return [[_cell(value) for value in row] for row in sheet.iter_rows(max_row=MAX_ITEMS + 2, values_only=True)]
    finally:
        book.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel keeps 20 as 20.0
    return str(value)


def _columns(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i, title in enumerate(header):
        name = next((n for n, titles in COLUMNS.items() if title.strip().lower() in titles), None)
        if name is None:
            raise FileProblem(f"columns[{i}]", f"unknown column {title.strip()!r}: the columns are "
                              + ", ".join(titles[0] for titles in COLUMNS.values()))
        if name in found:
            raise FileProblem(f"columns[{i}]", f"the column {title.strip()!r} is there twice")
        found[name] = i
    missing = [COLUMNS[n][0] for n in REQUIRED if n not in found]
    if missing:
        raise FileProblem("columns", "the file has no " + ", ".join(missing) + " column")
    return found


def _item(n: int, cells: dict[str, str]) -> ApprovalItem:
    fields: dict[str, Any] = {}
    for name, raw in cells.items():
        if raw == "" and name not in REQUIRED:
            continue  # the item's default
        fields[name] = _value(f"rows[{n}].{name}", name, raw)
    try:
        item = msgspec.convert(fields, ApprovalItem)
        check_item(item)
    except msgspec.ValidationError as error:
        field = re.search(r"at `\$\.(\w+)", str(error))
        raise FileProblem(f"rows[{n}]" + (f".{field[1]}" if field else ""), str(error).split(" - at ")[0]) from None
    except ItemProblem as problem:
        raise FileProblem(f"rows[{n}].{problem.field}", problem.message) from None
    return item


def _value(field: str, name: str, raw: str) -> Any:
    if name in ("legal_days", "promised_days", "max_suspension_days"):
        if not raw.isascii() or not raw.isdigit():
            raise FileProblem(field, f"{raw!r} is not a whole number of days")
        return int(raw)
    if name == "fee_limit_yuan":
        try:
            return float(raw)
        except ValueError:
            raise FileProblem(field, f"{raw!r} is not an amount in yuan") from None
    if name == "stages":
        stages = [STAGE_NAMES.get(s.lower()) for s in _LIST.split(raw)]
        if None in stages:
            raise FileProblem(field, f"{raw!r}: the stages are " + "、".join(list(STAGE_NAMES)[:5]))
        return stages
    if name == "required_documents":
        return [d for d in _LIST.split(raw) if d]
    if name == "separate_review_and_approval":
        if raw.lower() not in YES | NO:
            raise FileProblem(field, f"{raw!r}: write 是 or 否")
        return raw.lower() in YES
    return raw
