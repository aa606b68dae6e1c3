"""The monthly bulletin (一月一通报): the month's figures for the whole hall, the departments ranked by
their appraisal score, the cards, the complaints and the notable cases — as HTML and as a PDF with
its fonts embedded (subset), issued once per month and archived with the PDF's SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
import html
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import msgspec
from fpdf import FPDF
from fpdf.fonts import FontFace

from base import audit
from base.errors import DomainError, NotFound
from base.pg import Pool
from efficiency import statistics
from efficiency.appraisal import Weights, ranking

PARTS = {"on_time": "按时办结", "satisfaction": "满意度", "cards": "红黄牌", "anomalies": "异常",
         "complaints": "投诉", "presence": "在岗"}


@dataclass(frozen=True)
class Fonts:
    """A Latin font for figures and a CJK font for the rest (fpdf2 falls back glyph by glyph)."""

    latin: Path
    cjk: Path

    def missing(self) -> list[Path]:
        return [path for path in (self.latin, self.cjk) if not path.is_file()]


class AlreadyIssued(DomainError):
    code = "duplicate"


def month_bounds(month: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The month's first and last instants in the centre's time zone."""
    first = datetime(month.year, month.month, 1, tzinfo=zone)
    following = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=zone)
    return first, following - timedelta(microseconds=1)


async def gather(pool: Pool, month: date, zone: tzinfo, weights: Weights) -> dict[str, Any]:
    since, until = month_bounds(month, zone)
    departments = await statistics.figures(pool, since, until, "department")
    notable = await pool.fetch(
        "SELECT c.department, c.reference, i.name AS item, c.used_days, c.legal_days, c.completed_at IS NOT NULL"
        " AS completed FROM approval_cases c JOIN approval_items i ON i.code = c.item_code"
        " WHERE c.used_days > c.legal_days AND (c.completed_at BETWEEN $1 AND $2 OR (c.completed_at IS NULL"
        " AND c.accepted_at <= $2)) ORDER BY c.used_days - c.legal_days DESC LIMIT 10", since, until)
    complaints = await pool.fetch(
        "SELECT department, window_label, received_at, state, upheld, verdict FROM complaints"
        " WHERE received_at BETWEEN $1 AND $2 ORDER BY received_at", since, until)
    return {"month": month.strftime("%Y-%m"), "totals": statistics.totals(departments),
            "departments": departments, "ranking": [asdict(s) for s in ranking(departments, weights)],
            "notable": [dict(r.items()) for r in notable], "complaints": [dict(r.items()) for r in complaints]}


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _days(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _tables(figures: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The bulletin's content as titled tables: the HTML and the PDF lay out the same rows."""
    t = figures["totals"]
    summary = [["受理 received", str(t["received"])], ["办结 completed", str(t["completed"])],
               ["按时办结率 on time", _rate(t["on_time_rate"])], ["超期 late", str(t["late"])],
               ["红牌 red cards", str(t["red_cards"])], ["黄牌 yellow cards", str(t["yellow_cards"])],
               ["异常 anomalies", str(t["anomalies"])], ["投诉 complaints", str(t["complaints"])],
               ["满意度 satisfaction", _rate(t["satisfaction"])],
               ["离岗 absence (min)", f"{t['absence_minutes']:.0f}"]]
    ranked = [[str(n), s["department"], f"{s['total']:.2f}",
               *(f"{p['points']:.1f}" for p in s["parts"])] for n, s in enumerate(figures["ranking"], 1)]
    by_department = [[d["key"], str(d["received"]), str(d["completed"]), _rate(d["on_time_rate"]),
                      _days(d["average_days"]), _days(d["p90_days"]), str(d["red_cards"]), str(d["yellow_cards"]),
                      str(d["complaints"])] for d in figures["departments"]]
    notable = [[n["department"], n["reference"], n["item"], f"{n['used_days']:.1f} / {n['legal_days']}",
                "办结" if n["completed"] else "在办"] for n in figures["notable"]]
    complaints = [[c["department"], c["window_label"] or "—", c["received_at"].strftime("%m-%d %H:%M"),
                   c["state"], {True: "属实", False: "不属实", None: "—"}[c["upheld"]]]
                  for c in figures["complaints"]]
    return [
        ("全厅概况 The hall", ["项目", "数值"], summary),
        ("绩效考核排名 Appraisal ranking", ["名次", "部门", "得分", *PARTS.values()], ranked),
        ("各部门办件 Cases by department", ["部门", "受理", "办结", "按时率", "平均天数", "P90 天数", "红牌",
                                            "黄牌", "投诉"], by_department),
        ("超期办件 Notable cases (past the legal limit)", ["部门", "办件号", "事项", "已用/法定工作日", "状态"],
         notable),
        ("投诉 Complaints", ["部门", "窗口", "收到", "状态", "核实"], complaints),
    ]


def _title(figures: dict[str, Any]) -> str:
    year, month = figures["month"].split("-")
    return f"行政效能电子监察月度通报 {year}年{int(month)}月"


def render_html(figures: dict[str, Any]) -> str:
    parts = [f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>{html.escape(_title(figures))}"
             "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #999;padding:.3em .6em}th{background:#eee}</style></head><body>",
             f"<h1>{html.escape(_title(figures))}</h1>"]
    for title, head, rows in _tables(figures):
        parts.append(f"<h2>{html.escape(title)}</h2><table><thead><tr>"
                     + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows]
        if not rows:
            parts.append(f"<tr><td colspan='{len(head)}'>无 none</td></tr>")
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "".join(parts)


def render_pdf(figures: dict[str, Any], fonts: Fonts) -> bytes:
    pdf = FPDF(orientation="landscape")
    pdf.set_title(_title(figures))
    pdf.add_font("latin", fname=str(fonts.latin))
    pdf.add_font("cjk", fname=str(fonts.cjk))
    pdf.set_fallback_fonts(["cjk"])
    pdf.add_page()
    pdf.set_font("latin", size=18)
    pdf.cell(text=_title(figures), new_x="LMARGIN", new_y="NEXT")
    for title, head, rows in _tables(figures):
        pdf.set_font("latin", size=13)
        pdf.ln(4)
        pdf.cell(text=title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("latin", size=9)
        with pdf.table(headings_style=FontFace(emphasis=None, fill_color=(230, 230, 230))) as table:
            for cells in [head, *(rows or [["无 none", *[""] * (len(head) - 1)]])]:
                row = table.row()
                for value in cells:
                    row.cell(value)
    return bytes(pdf.output())


async def issue(pool: Pool, month: date, zone: tzinfo, weights: Weights, fonts: Fonts,
                actor: audit.Actor) -> dict[str, Any]:
    """Issue the month's bulletin once, after the month has ended; the figures are those stored now."""
    first = date(month.year, month.month, 1)
    if month_bounds(first, zone)[1] > await pool.fetchval("SELECT now()"):
        raise DomainError(f"{first:%Y-%m} has not ended; a bulletin covers a whole month", "month")
    if missing := fonts.missing():
        raise DomainError(f"the bulletin's fonts are missing ({', '.join(map(str, missing))}): install"
                          " fonts-dejavu-core and fonts-droid-fallback, or set [efficiency] latin_font and cjk_font",
                          code="unavailable")
    if await pool.fetchval("SELECT true FROM efficiency_bulletins WHERE month = $1", first):
        raise AlreadyIssued(f"the bulletin for {first:%Y-%m} was issued already", "month")
    figures = await gather(pool, first, zone, weights)
    page = render_html(figures)
    pdf = await asyncio.to_thread(render_pdf, figures, fonts)
    digest = hashlib.sha256(pdf).hexdigest()
    entry = audit.Entry(actor, "efficiency.bulletin", f"bulletin:{first:%Y-%m}", details={"pdf_sha256": digest})
    async with audit.recorded(pool, entry) as connection:
        inserted = await connection.fetchval(
            "INSERT INTO efficiency_bulletins (month, issued_by, figures, html, pdf, pdf_sha256)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (month) DO NOTHING RETURNING true", first, actor.name,
            msgspec.to_builtins(figures), page, pdf, digest)
        if not inserted:  # another supervisor issued it meanwhile
            raise AlreadyIssued(f"the bulletin for {first:%Y-%m} was issued already", "month")
    return {"month": f"{first:%Y-%m}", "pdf_sha256": digest, "bytes": len(pdf)}


async def issued(pool: Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT to_char(month, 'YYYY-MM') AS month, issued_at, issued_by, pdf_sha256,"
                            " octet_length(pdf) AS bytes FROM efficiency_bulletins ORDER BY month DESC")
    return [dict(r.items()) for r in rows]


async def stored(pool: Pool, month: date, kind: str) -> bytes | str:
    value: bytes | str | None = await pool.fetchval(
        f"SELECT {'pdf' if kind == 'pdf' else 'html'} FROM efficiency_bulletins WHERE month = $1", month)
    if value is None:
        raise NotFound(f"no bulletin was issued for {month:%Y-%m}", "month")
    return value
