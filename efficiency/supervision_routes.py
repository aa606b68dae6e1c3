"""HTTP routes of the supervision centre's work on cases: correction notices, complaints, the figures,
the appraisal and the monthly bulletin.

Two kinds of account take part. The centre's supervisors (not limited to departments) issue and judge
correction notices, take hotline complaints, assign and close them. A department's own account (a
supervisor or a system limited to that department) answers what is addressed to it. Neither can do
the other's part: a department never judges its own correction.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated

import msgspec
from aiohttp import web

from base.accounts import Role
from base.context import PLATFORM
from base.errors import DomainError, RequestError
from base.http import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    Api,
    actor_of,
    body_of,
    choice_param,
    limit_param,
    path_id,
    reply,
    timestamp_param,
    user_of,
)
from efficiency import bulletin, complaints, corrections, statistics
from efficiency.appraisal import ranking
from efficiency.context import EFFICIENCY
from efficiency.routes import own

api = Api()
SUPERVISORS = (Role.ADMINISTRATOR, Role.SUPERVISOR)
ANSWERERS = (Role.SUPERVISOR, Role.SYSTEM)  # a department answers through its people or its system
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def _centre(request: web.Request, what: str) -> None:
    if user_of(request).departments:
        raise DomainError(f"only the centre's supervisors {what}; this account answers for its departments",
                          code="forbidden")


def _department(request: web.Request, department: str) -> None:
    if department not in user_of(request).departments:
        raise DomainError(f"only {department}'s own account answers this", code="forbidden")


def _month(raw: str | None, field: str, status: int = 400) -> date:
    found = _MONTH.match(raw or "")
    if found is None or not EARLIEST_YEAR <= int(found[1]) <= LATEST_YEAR:
        raise RequestError(status, "invalid", f"{raw!r} is not a month such as 2026-10", field)
    return date(int(found[1]), int(found[2]), 1)


# --- correction notices -------------------------------------------------------------------------

@api.post("/api/efficiency/cases/{id}/corrections", "Issue a correction notice (纠错通知) on a case, optionally"
          " answering one of its cards", roles=(Role.SUPERVISOR,), body=corrections.Notice, status=201)
async def issue_correction(request: web.Request) -> web.Response:
    _centre(request, "issue correction notices")
    notice = await body_of(request, corrections.Notice)
    return reply(await corrections.issue(request.app[PLATFORM].pool, path_id(request), notice, actor_of(request)),
                 status=201)


@api.get("/api/efficiency/corrections", "Correction notices not yet accepted, oldest first", roles=ANSWERERS)
async def open_corrections(request: web.Request) -> web.Response:
    return reply(await corrections.open_notices(request.app[PLATFORM].pool, user_of(request).departments))


@api.post("/api/efficiency/corrections/{id}/answer", "The department's answer: the measure it took (from issued"
          " or returned)", roles=ANSWERERS, body=corrections.Answer, conflicts=True)
async def answer_correction(request: web.Request) -> web.Response:
    pool, notice_id = request.app[PLATFORM].pool, path_id(request)
    answer = await body_of(request, corrections.Answer)
    _department(request, await corrections.department_of(pool, notice_id))
    return reply(await corrections.advance(pool, notice_id, "answered", answer.body, actor_of(request)))


@api.post("/api/efficiency/corrections/{id}/decision", "Accept the department's answer (the card it answers"
          " closes) or return it for another", roles=(Role.SUPERVISOR,), body=corrections.Decision, conflicts=True)
async def decide_correction(request: web.Request) -> web.Response:
    _centre(request, "accept or return answers")
    decision = await body_of(request, corrections.Decision)
    return reply(await corrections.advance(request.app[PLATFORM].pool, path_id(request), decision.verdict,
                                           decision.body, actor_of(request)))


# --- complaints ----------------------------------------------------------------------------------

@api.post("/api/efficiency/complaints", "Enter a complaint taken on the hotline", roles=(Role.SUPERVISOR,),
          body=complaints.NewComplaint, status=201, also=(404,))
async def hotline_complaint(request: web.Request) -> web.Response:
    _centre(request, "take hotline complaints")
    complaint = await body_of(request, complaints.NewComplaint)
    efficiency = request.app[EFFICIENCY]
    return reply(await complaints.receive(request.app[PLATFORM].pool, efficiency.calendar, complaint, "hotline",
                                          "", efficiency.complaint_days, efficiency.yellow_share,
                                          actor_of(request)), status=201)


@api.get("/api/efficiency/complaints", "Complaints, newest first (open=true: not yet closed)", roles=ANSWERERS,
         query=("open", "limit"))
async def list_complaints(request: web.Request) -> web.Response:
    open_only = choice_param(request, "open", ("true", "false"), "false") == "true"
    return reply(await complaints.listing(request.app[PLATFORM].pool, user_of(request).departments, open_only,
                                          limit_param(request, 200)))


@api.get("/api/efficiency/complaints/{id}", "One complaint", roles=ANSWERERS)
async def get_complaint(request: web.Request) -> web.Response:
    found = await complaints.one(request.app[PLATFORM].pool, path_id(request))
    own(request, found["department"], "id")
    return reply(found)


@api.post("/api/efficiency/complaints/{id}/assignment", "Assign a complaint to the person who answers it",
          roles=(Role.SUPERVISOR,), body=complaints.Assignment, conflicts=True)
async def assign_complaint(request: web.Request) -> web.Response:
    _centre(request, "assign complaints")
    assignment = await body_of(request, complaints.Assignment)
    return reply(await complaints.assign(request.app[PLATFORM].pool, path_id(request), assignment,
                                         actor_of(request)))


@api.post("/api/efficiency/complaints/{id}/answer", "The department's answer and its finding (upheld or not)",
          roles=ANSWERERS, body=complaints.Reply, conflicts=True)
async def answer_complaint(request: web.Request) -> web.Response:
    pool, complaint_id = request.app[PLATFORM].pool, path_id(request)
    answer = await body_of(request, complaints.Reply)
    _department(request, await complaints.department_of(pool, complaint_id))
    return reply(await complaints.answer(pool, complaint_id, answer, actor_of(request)))


@api.post("/api/efficiency/complaints/{id}/closing", "Close an answered complaint with the complainant's verdict",
          roles=(Role.SUPERVISOR,), body=complaints.Closing, conflicts=True)
async def close_complaint(request: web.Request) -> web.Response:
    _centre(request, "close complaints")
    closing = await body_of(request, complaints.Closing)
    return reply(await complaints.close(request.app[PLATFORM].pool, path_id(request), closing, actor_of(request)))


# --- figures, appraisal, bulletin ---------------------------------------------------------------

@api.get("/api/efficiency/statistics", "The figures for a period (default: this month so far) by department,"
         " item, window or staff, with the hall's totals", roles=SUPERVISORS, query=("since", "until", "by"))
async def get_statistics(request: web.Request) -> web.Response:
    zone = request.app[EFFICIENCY].calendar.zone
    now = datetime.now(zone)
    since = timestamp_param(request, "since") or now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    until = timestamp_param(request, "until") or now
    if until <= since:
        raise RequestError(400, "invalid", "until must be after since", "until")
    if until - since > timedelta(days=3660):
        raise RequestError(400, "invalid", "a period is at most ten years", "since")
    by = choice_param(request, "by", tuple(statistics.GROUPS), "department")
    rows = await statistics.figures(request.app[PLATFORM].pool, since, until, by, user_of(request).departments)
    return reply({"since": since, "until": until, "by": by, "rows": rows, "totals": statistics.totals(rows)})


@api.get("/api/efficiency/appraisal", "Each department's appraisal score for a month (default: this month so"
         " far), best first, with each part's points and basis", roles=SUPERVISORS, query=("month",))
async def get_appraisal(request: web.Request) -> web.Response:
    efficiency = request.app[EFFICIENCY]
    raw = request.query.get("month")
    month = _month(raw, "month") if raw is not None else datetime.now(efficiency.calendar.zone).date().replace(day=1)
    since, until = bulletin.month_bounds(month, efficiency.calendar.zone)
    rows = await statistics.figures(request.app[PLATFORM].pool, since, until, "department",
                                    user_of(request).departments)
    return reply({"month": f"{month:%Y-%m}", "weights": efficiency.weights,
                  "scores": ranking(rows, efficiency.weights)})


class BulletinRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    month: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]  # e.g. "2026-10"


@api.post("/api/efficiency/bulletins", "Issue the monthly bulletin (一月一通报) of a month that has ended: PDF and"
          " HTML, archived; once per month", roles=(Role.SUPERVISOR,), body=BulletinRequest, status=201,
          conflicts=True, deadline=False)
async def issue_bulletin(request: web.Request) -> web.Response:
    _centre(request, "issue the bulletin")
    wanted = await body_of(request, BulletinRequest)
    efficiency = request.app[EFFICIENCY]
    issued = await bulletin.issue(request.app[PLATFORM].pool, _month(wanted.month, "month", 422),
                                  efficiency.calendar.zone, efficiency.weights, efficiency.fonts, actor_of(request))
    return reply(issued, status=201)


@api.get("/api/efficiency/bulletins", "The bulletins issued, newest first", roles=SUPERVISORS)
async def list_bulletins(request: web.Request) -> web.Response:
    return reply(await bulletin.issued(request.app[PLATFORM].pool))


@api.get("/api/efficiency/bulletins/{month}/pdf", "An issued bulletin as PDF", roles=SUPERVISORS,
         produces="application/pdf")
async def bulletin_pdf(request: web.Request) -> web.Response:
    month = _month(request.match_info["month"], "month", 404)
    pdf = await bulletin.stored(request.app[PLATFORM].pool, month, "pdf")
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="liandong-bulletin-{month:%Y-%m}.pdf"'})


@api.get("/api/efficiency/bulletins/{month}/html", "An issued bulletin as HTML", roles=SUPERVISORS,
         produces="text/html")
async def bulletin_html(request: web.Request) -> web.Response:
    month = _month(request.match_info["month"], "month", 404)
    page = await bulletin.stored(request.app[PLATFORM].pool, month, "html")
    return web.Response(text=str(page), content_type="text/html")
