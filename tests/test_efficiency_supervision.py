"""The supervision centre's work on cases: a correction notice's round trip, a complaint from the public
carded when its answer is late, a window rating counted once, and a month's figures, appraisal and
bulletin, each read back as the server stored it."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from pypdf import PdfReader

from tests.hall import CST, MARKET, days_ago, event, market_system, send
from tests.helpers import Liandong


async def market_lead(liandong: Liandong) -> str:
    """The market regulator's own supervisor: answers for the department, judges nothing."""
    return await liandong.make_account("market-lead", "市场监管局科长", "supervisor", departments=[MARKET])


async def cards_of(liandong: Liandong, case_id: int) -> list[dict[str, Any]]:
    status, case = await liandong.call("GET", f"/api/efficiency/cases/{case_id}", as_user="supervisor")
    assert status == 200
    cards: list[dict[str, Any]] = case["cards"]
    return cards


async def test_a_correction_notice_is_answered_returned_answered_again_and_accepted_which_closes_its_card(
        liandong: Liandong) -> None:
    system, lead = await market_system(liandong), await market_lead(liandong)
    start = days_ago(1)
    story = ((1, "accept", "张敏"), (2, "handle", "王芳"), (3, "review", "李强"), (4, "approve", "李强"))
    for n, stage, actor in story:
        status, sent = await send(liandong, system, event("C-1", n, "stage", start + timedelta(hours=n), stage,
                                                          actor=actor, documents=["营业执照"]))
        assert status == 201
    case_id = sent["case_id"]
    [card] = [c for c in await cards_of(liandong, case_id) if c["reason"] == "same_person"]

    notice = {"body": "审核与审批由同一人办理，请说明并整改", "card_id": card["id"]}
    status, refused = await liandong.call("POST", f"/api/efficiency/cases/{case_id}/corrections", notice, as_user=lead)
    assert (status, refused["error"]["code"]) == (403, "forbidden")  # a department does not correct itself
    status, issued = await liandong.call("POST", f"/api/efficiency/cases/{case_id}/corrections", notice,
                                         as_user="supervisor")
    assert (status, issued["state"]) == (201, "issued")
    path = f"/api/efficiency/corrections/{issued['id']}"

    status, refused = await liandong.call("POST", f"{path}/answer", {"body": "已整改"}, as_user="supervisor")
    assert (status, refused["error"]["code"]) == (403, "forbidden")  # only the department answers
    status, refused = await liandong.call("POST", f"{path}/decision", {"verdict": "accepted", "body": "好"},
                                          as_user="supervisor")
    assert (status, refused["error"]["code"]) == (409, "illegal_transition")  # nothing to accept yet
    status, open_for_lead = await liandong.call("GET", "/api/efficiency/corrections", as_user=lead)
    assert [n["id"] for n in open_for_lead] == [issued["id"]]

    steps = (("answer", lead, {"body": "已调整分工"}, "answered"),
             ("decision", "supervisor", {"verdict": "returned", "body": "未说明审批人"}, "returned"),
             ("answer", lead, {"body": "审批改由副局长办理，已建立 AB 岗"}, "answered"),
             ("decision", "supervisor", {"verdict": "accepted", "body": "同意"}, "accepted"))
    for action, who, body, state in steps:
        status, notice_now = await liandong.call("POST", f"{path}/{action}", body, as_user=who)
        assert (status, notice_now["state"]) == (200, state), notice_now

    [closed] = [c for c in await cards_of(liandong, case_id) if c["id"] == card["id"]]
    assert closed["closed_at"] is not None and closed["closed_by"] == f"correction {issued['id']}"
    status, case = await liandong.call("GET", f"/api/efficiency/cases/{case_id}", as_user="supervisor")
    [timeline] = case["corrections"]
    assert [(s["kind"], s["actor"]) for s in timeline["steps"]] == [
        ("issued", "supervisor"), ("answered", "market-lead"), ("returned", "supervisor"),
        ("answered", "market-lead"), ("accepted", "supervisor")]
    status, again = await liandong.call("POST", f"{path}/decision", {"verdict": "returned", "body": "x"},
                                        as_user="supervisor")
    assert (status, again["error"]["code"]) == (409, "illegal_transition")


async def wait_for_cards(liandong: Liandong, complaint_id: int, colours: set[str]) -> list[dict[str, Any]]:
    for _ in range(60):
        _status, cards = await liandong.call("GET", "/api/efficiency/cards", as_user="supervisor")
        mine = [c for c in cards if c["complaint_id"] == complaint_id]
        if {c["colour"] for c in mine} >= colours:
            return mine
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {colours} card for complaint {complaint_id}: {cards}")


async def test_a_public_complaint_is_carded_when_its_answer_is_late_and_closed_with_the_complainants_verdict(
        liandong: Liandong, database_url: str) -> None:
    lead = await market_lead(liandong)
    complaint = {"department": MARKET, "window": "3号窗口", "complainant": "刘女士", "contact": "13800000000",
                 "body": "排队两小时，窗口人员长时间离岗。"}
    for body, status_and_field in (({**complaint, "department": "不存在的局"}, (422, "department")),
                                   ({**complaint, "body": "长" * 2001}, (422, "body")),
                                   ({**complaint, "case": "NO-SUCH"}, (404, "case")),
                                   ({**complaint, "contact": "1"}, (422, "contact"))):
        status, refused = await liandong.call("POST", "/api/public/complaints", body)
        assert (status, refused["error"]["field"]) == status_and_field, refused
    status, received = await liandong.call("POST", "/api/public/complaints", complaint)  # no account
    assert status == 201 and datetime.fromisoformat(received["due_at"]) > datetime.now(CST)

    connection = await asyncpg.connect(database_url)
    try:  # the clock named by the test: the answer's yellow share is used and its limit passes in a second
        await connection.execute("UPDATE complaints SET yellow_at = now(), due_at = now() + interval '1 second'"
                                 " WHERE id = $1", received["id"])
    finally:
        await connection.close()
    cards = await wait_for_cards(liandong, received["id"], {"yellow", "red"})
    assert {c["department"] for c in cards} == {MARKET}

    complaint_path = f"/api/efficiency/complaints/{received['id']}"
    status, assigned = await liandong.call("POST", f"{complaint_path}/assignment", {"to": "王科长"},
                                           as_user="supervisor")
    assert (status, assigned["state"]) == (200, "assigned")
    status, early = await liandong.call("POST", f"{complaint_path}/closing", {"verdict": "satisfied"},
                                        as_user="supervisor")
    assert (status, early["error"]["code"]) == (409, "illegal_transition")  # not answered yet
    status, answered = await liandong.call(
        "POST", f"{complaint_path}/answer", {"answer": "经查属实，已对当事人批评教育并调整排班。", "upheld": True},
        as_user=lead)
    assert (status, answered["state"], answered["upheld"]) == (200, "answered", True)
    status, closed = await liandong.call("POST", f"{complaint_path}/closing", {"verdict": "unsatisfied"},
                                         as_user="supervisor")
    assert (status, closed["state"], closed["verdict"]) == (200, "closed", "unsatisfied")
    status, cards = await liandong.call("GET", "/api/efficiency/cards", as_user="supervisor")
    # the late answer's warning is settled; the red card stays on record until a correction is accepted
    assert sorted(c["colour"] for c in cards if c["complaint_id"] == received["id"]) == ["red"]

    for _ in range(4):  # five an hour from one address; the sixth is told to wait or call the hotline
        status, _ = await liandong.call("POST", "/api/public/complaints", complaint)
        assert status == 201
    status, throttled = await liandong.call("POST", "/api/public/complaints", complaint)
    assert (status, throttled["error"]["code"]) == (429, "too_many_attempts")
    status, _hotline = await liandong.call("POST", "/api/efficiency/complaints", complaint, as_user="supervisor")
    assert status == 201  # the hotline is not throttled: the centre types what callers say


async def test_a_window_rating_counts_once_for_a_case_the_window_has_reached(liandong: Liandong) -> None:
    system = await market_system(liandong)
    status, sent = await send(liandong, system, event("R-1", 1, "stage", days_ago(0), "accept", window="3号窗口",
                                                      documents=["营业执照"]))
    where = {"department": MARKET, "window": "3号窗口"}
    status, offered = await liandong.call("GET", f"/api/public/windows/waiting?department={MARKET}&window=3号窗口")
    assert (status, offered["reference"], offered["moment"]) == (200, "R-1", "accepted")

    rating = {**where, "case": "R-1", "moment": "accepted", "verdict": "satisfied"}
    for body, expected in (({**rating, "case": "NO-SUCH"}, (404, "case")),
                           ({**rating, "window": "5号窗口"}, (404, "case")),  # not that window's case
                           ({**rating, "moment": "completed"}, (422, "moment")),
                           ({**rating, "verdict": "great"}, (422, "verdict"))):
        status, refused = await liandong.call("POST", "/api/public/ratings", body)
        assert (status, refused["error"]["field"]) == expected, refused
    status, _ = await liandong.call("POST", "/api/public/ratings", rating)
    assert status == 201
    status, again = await liandong.call("POST", "/api/public/ratings", {**rating, "verdict": "unsatisfied"})
    assert (status, again["error"]["code"]) == (409, "duplicate")
    status, offered = await liandong.call("GET", f"/api/public/windows/waiting?department={MARKET}&window=3号窗口")
    assert (status, offered) == (200, None)  # rated: the tablet goes back to its welcome
    status, case = await liandong.call("GET", f"/api/efficiency/cases/{sent['case_id']}", as_user="supervisor")
    assert [(r["moment"], r["verdict"]) for r in case["ratings"]] == [("accepted", "satisfied")]


def last_month() -> tuple[datetime, str]:
    """A Tuesday morning in the month before this one, two weeks before that month's end, and the month."""
    first = datetime.now(CST).replace(day=1, hour=9, minute=0, second=0, microsecond=0)
    day = (first - timedelta(days=1)).replace(day=10)
    while day.weekday() != 1:
        day += timedelta(days=1)
    return day, f"{day:%Y-%m}"


SHORT_ITEM = {"department": MARKET, "code": "SC-T01", "name": "临时占用道路许可", "legal_days": 2,
              "promised_days": 1, "required_documents": ["营业执照"]}


async def test_a_months_figures_give_the_appraisal_and_the_bulletin_says_them(liandong: Liandong,
                                                                              database_url: str) -> None:
    system = await market_system(liandong)
    status, _ = await liandong.call("POST", "/api/efficiency/items", SHORT_ITEM, as_user="supervisor")
    assert status == 201
    tuesday, month = last_month()
    # On time: accepted and completed the same day. Late: completed two weeks on (past 2 working days whatever
    # the holidays), reviewed and approved by one person. A third, accepted the next day, is still open.
    stories = {"M-1": [(1, "accept", tuesday, "张敏"), (2, "handle", tuesday + timedelta(hours=1), "王芳"),
                       (3, "review", tuesday + timedelta(hours=2), "李强"),
                       (4, "approve", tuesday + timedelta(hours=3), "赵伟"),
                       (5, "complete", tuesday + timedelta(hours=4), "张敏")],
               "M-2": [(1, "accept", tuesday, "张敏"), (2, "handle", tuesday + timedelta(days=1), "王芳"),
                       (3, "review", tuesday + timedelta(days=2), "李强"),
                       (4, "approve", tuesday + timedelta(days=3), "李强"),
                       (5, "complete", tuesday + timedelta(days=14), "张敏")],
               "M-3": [(1, "accept", tuesday + timedelta(days=1), "张敏")]}
    for case, steps in stories.items():
        for n, stage, at, actor in steps:
            status, sent = await send(liandong, system, event(case, n, "stage", at, stage, actor=actor, item="SC-T01",
                                                              window="3号窗口", documents=["营业执照"]))
            assert status == 201, sent
    connection = await asyncpg.connect(database_url)
    try:  # ratings and cards as the month left them: the tablet and the sweep ran in that month
        ids = {r["reference"]: r["id"] for r in await connection.fetch("SELECT reference, id FROM approval_cases")}
        for reference, verdict in (("M-1", "satisfied"), ("M-2", "basically")):
            await connection.execute("INSERT INTO window_ratings (case_id, moment, verdict, department, window_label,"
                                     " at) VALUES ($1, 'completed', $2, $3, '3号窗口', $4)", ids[reference], verdict,
                                     MARKET, tuesday + timedelta(hours=5))
        await connection.execute("UPDATE efficiency_cards SET opened_at = $1", tuesday + timedelta(hours=6))
        await connection.execute("UPDATE case_anomalies SET found_at = $1", tuesday + timedelta(hours=6))
        cards = await connection.fetch("SELECT colour, reason FROM efficiency_cards WHERE closed_by <> 'cause gone'")
    finally:
        await connection.close()
    red = sum(c["colour"] == "red" for c in cards)
    yellow = sum(c["colour"] == "yellow" for c in cards)
    assert (red, yellow) == (3, 2), cards  # M-2: same person, time; M-3: time. M-1 seemed late, mid-history only

    status, figures = await liandong.call("GET", f"/api/efficiency/appraisal?month={month}", as_user="supervisor")
    assert status == 200
    [market] = [s for s in figures["scores"] if s["department"] == MARKET]
    parts = {p["name"]: p["points"] for p in market["parts"]}
    # on time 1 of 2 → 35 × ½; satisfaction (1 + ½) / 2 → 20 × ¾; cards 15 − 3×2 − 2×0.5; anomalies 10 − 1;
    # no complaint upheld; no window camera found the seat empty.
    assert parts == {"on_time": 17.5, "satisfaction": 15.0, "cards": 8.0, "anomalies": 9.0, "complaints": 10.0,
                     "presence": 10.0}
    assert market["total"] == 69.5
    assert figures["scores"][0]["total"] == 100.0  # a quiet department: nothing to judge, full marks

    this_month = f"{datetime.now(CST):%Y-%m}"
    status, early = await liandong.call("POST", "/api/efficiency/bulletins", {"month": this_month},
                                        as_user="supervisor")
    assert (status, early["error"]["field"]) == (422, "month")  # the month has not ended
    status, issued = await liandong.call("POST", "/api/efficiency/bulletins", {"month": month}, as_user="supervisor")
    assert status == 201, issued
    status, again = await liandong.call("POST", "/api/efficiency/bulletins", {"month": month}, as_user="supervisor")
    assert (status, again["error"]["code"]) == (409, "duplicate")

    pdf = await liandong.raw("GET", f"/api/efficiency/bulletins/{month}/pdf", as_user="supervisor")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    year, number = month.split("-")
    assert f"行政效能电子监察月度通报 {year}年{int(number)}月" in text
    assert f"{MARKET} 69.50" in text  # its rank line: department and score
    assert "M-2" in text and "按时办结率" in text
    assert b"/FontFile2" in pdf  # the fonts travel inside the file
    page = (await liandong.raw("GET", f"/api/efficiency/bulletins/{month}/html", as_user="supervisor")).decode()
    assert MARKET in page and "69.50" in page


async def test_a_card_is_counted_at_the_window_and_staff_member_its_case_moved_to(liandong: Liandong) -> None:
    system = await market_system(liandong)
    start = days_ago(0.2)
    # Accepted at window 1 without the required documents: a red card for it, counted at window 1.
    status, sent = await send(liandong, system, event("W-1", 1, "stage", start, "accept", actor="张敏",
                                                      window="1号窗口"))
    assert status == 201, sent
    assert [c["colour"] for c in await cards_of(liandong, sent["case_id"])] == ["red"]

    async def by(grouping: str) -> dict[str, tuple[int, int]]:
        status, figures = await liandong.call("GET", f"/api/efficiency/statistics?by={grouping}", as_user="supervisor")
        assert status == 200
        return {row["key"]: (row["red_cards"], row["open_cards"]) for row in figures["rows"]
                if row["red_cards"] or row["open_cards"]}

    assert await by("window") == {f"{MARKET} · 1号窗口": (1, 1)}
    assert await by("staff") == {f"{MARKET} · 张敏": (1, 1)}
    # The case's next stage is done at window 2: the case is now window 2's, and its card goes with it.
    status, sent = await send(liandong, system, event("W-1", 2, "stage", start + timedelta(minutes=5), "handle",
                                                      actor="王芳", window="2号窗口"))
    assert status == 201, sent
    assert await by("window") == {f"{MARKET} · 2号窗口": (1, 1)}
    assert await by("staff") == {f"{MARKET} · 张敏": (1, 1)}  # who accepted it is unchanged
    assert await by("department") == {MARKET: (1, 1)}
