"""A department's catalogue of approval items imported from the spreadsheet it keeps: a CSV saved by
Excel on a Chinese desktop, or an XLSX workbook. Every row is checked first; one bad cell refuses the
whole file, naming its row and column, and stores nothing."""

from __future__ import annotations

import io
from typing import Any

import openpyxl

from efficiency.catalogue_file import CSV, XLSX
from tests.hall import MARKET
from tests.helpers import Liandong

HEADER_ZH = "部门,事项编码,事项名称,法定时限,承诺时限,环节,收费标准,申请材料,审核审批分离"
NEW_ITEM = f"{MARKET},SC-090,小餐饮经营备案,15,5,受理、审批、办结,0,营业执照；健康证明,是"


async def upload(liandong: Liandong, kind: str, data: bytes, as_user: str = "supervisor") -> tuple[int, Any]:
    return await liandong.call("POST", "/api/efficiency/items/import", as_user=as_user, data=data,
                               headers={"Content-Type": kind})


def workbook(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def item(liandong: Liandong, code: str) -> dict[str, Any] | None:
    status, items = await liandong.call("GET", "/api/efficiency/items", as_user="supervisor")
    assert status == 200
    return next((i for i in items if i["code"] == code), None)


async def test_a_csv_saved_by_a_chinese_excel_and_an_xlsx_workbook_are_imported(liandong: Liandong) -> None:
    csv = f"{HEADER_ZH}\r\n{NEW_ITEM}\r\n\r\n".encode("gb18030")
    status, imported = await upload(liandong, CSV, csv)
    assert (status, imported) == (200, {"items": 1, "created": 1, "replaced": 0}), imported
    assert await item(liandong, "SC-090") == {
        "department": MARKET, "code": "SC-090", "name": "小餐饮经营备案", "legal_days": 15, "promised_days": 5,
        "stages": ["accept", "approve", "complete"], "fee_limit_yuan": 0.0,
        "required_documents": ["营业执照", "健康证明"], "separate_review_and_approval": True,
        "max_suspension_days": 30}

    book = workbook([["department", "code", "name", "legal_days", "promised_days", "max_suspension_days"],
                     [MARKET, "SC-090", "小餐饮经营备案", 15, 3, 10],  # Excel stores numbers as 3.0
                     [MARKET, "SC-091", "食品小作坊登记", 20, 10, None]])
    status, imported = await upload(liandong, XLSX, book)
    assert (status, imported) == (200, {"items": 2, "created": 1, "replaced": 1}), imported
    replaced = await item(liandong, "SC-090")
    assert replaced is not None and (replaced["promised_days"], replaced["max_suspension_days"]) == (3, 10)
    assert replaced["stages"] == ["accept", "handle", "review", "approve", "complete"]  # the five, by default


async def test_one_bad_cell_refuses_the_whole_file_naming_its_row_and_column(liandong: Liandong) -> None:
    lead = await liandong.make_account("market-lead", "市场监管局窗口科", "supervisor", departments=[MARKET])
    good = NEW_ITEM.replace("SC-090", "SC-095")
    cases = [
        (f"{HEADER_ZH}\n{good}\n{MARKET},SC-096,x,10,12,,,,", "rows[2].promised_days"),  # promised beyond the law
        (f"{HEADER_ZH}\n{good}\n{MARKET},SC-096,x,十,5,,,,", "rows[2].legal_days"),
        (f"{HEADER_ZH}\n{good}\n{MARKET},SC-096,x,10,5,受理、盖章、办结,,,", "rows[2].stages"),
        (f"{HEADER_ZH}\n{good}\n{MARKET},SC-096,x,10,5,,免费,,", "rows[2].fee_limit_yuan"),
        (f"{HEADER_ZH}\n{good}\n{MARKET},SC-096,x,10,5,,,,也许", "rows[2].separate_review_and_approval"),
        (f"{HEADER_ZH}\n{good}\n{good}", "rows[2].code"),  # twice in one file
        (f"{HEADER_ZH}\n{good}\n{MARKET},bad code!,x,10,5,,,,", "rows[2].code"),
        (f"{HEADER_ZH},备注\n{good},", "columns[9]"),
        ("部门,事项名称\n市场监管局,x", "columns"),
        (HEADER_ZH, "body"),
    ]
    for text, field in cases:
        status, refused = await upload(liandong, CSV, text.encode())
        assert (status, refused["error"]["field"]) == (422, field), (text, refused)
    assert await item(liandong, "SC-095") is None  # nothing of a refused file is stored

    status, refused = await upload(liandong, XLSX, b"PK\x03\x04 not really a workbook")
    assert (status, refused["error"]["field"]) == (422, "body"), refused
    status, refused = await upload(liandong, "application/pdf", b"%PDF-1.7")
    assert (status, refused["error"]["code"]) == (415, "unsupported_media_type")
    other = f"{HEADER_ZH}\n{good}\n税务局,TX-099,x,10,5,,,,".encode()
    status, refused = await upload(liandong, CSV, other, as_user=lead)
    assert (status, refused["error"]["field"]) == (403, "rows[2].department"), refused
    assert await item(liandong, "SC-095") is None


async def test_an_item_posted_again_is_replaced_and_answered_200_as_the_api_document_says(liandong: Liandong) -> None:
    body = {"department": MARKET, "code": "SC-095", "name": "食品经营许可变更", "legal_days": 20, "promised_days": 10}
    first = await liandong.call("POST", "/api/efficiency/items", body, as_user="supervisor")
    again = await liandong.call("POST", "/api/efficiency/items", {**body, "promised_days": 8}, as_user="supervisor")
    assert (first, again) == ((201, {"code": "SC-095", "created": True}), (200, {"code": "SC-095", "created": False}))
    replaced = await item(liandong, "SC-095")
    assert replaced is not None and replaced["promised_days"] == 8
    status, document = await liandong.call("GET", "/api/openapi.json")
    assert status == 200
    assert {"200", "201"} <= set(document["paths"]["/api/efficiency/items"]["post"]["responses"])
