"""The demo hall's simulator, run against a real server through the ingestion API: within its opening
the supervision centre has yellow and red cards, each anomaly the opening is built to show, a complaint
and a rating, all as the server stored them."""

from __future__ import annotations

import asyncio
from datetime import timezone

from efficiency.calendar import WorkingCalendar
from efficiency.demo import catalogue
from efficiency.simulator import HallSimulator
from tests.hall import CST
from tests.helpers import PASSWORD, Liandong

WINDOWS = {"市场监管局": "1号窗口", "自然资源和规划局": "2号窗口", "公安局": "3号窗口", "税务局": "4号窗口"}


async def test_the_simulated_hall_shows_every_kind_of_card_a_complaint_and_a_rating(liandong: Liandong) -> None:
    simulator = HallSimulator(liandong.base_url, PASSWORD, WorkingCalendar(timezone(CST.utcoffset(None))),
                              catalogue(), WINDOWS, every_s=0.3, seed=7)
    running = asyncio.create_task(simulator.run())
    try:
        for _ in range(100):
            status, cards = await liandong.call("GET", "/api/efficiency/cards", as_user="supervisor")
            status, complaints = await liandong.call("GET", "/api/efficiency/complaints", as_user="supervisor")
            if complaints:  # the opening's last story
                break
            await asyncio.sleep(0.2)
    finally:
        running.cancel()
    reasons = {(c["colour"], c["reason"]) for c in cards}
    assert {("yellow", "time"), ("red", "time"), ("red", "same_person"), ("red", "fee_above_standard"),
            ("red", "documents_missing")} <= reasons, reasons
    assert {c["department"] for c in cards} <= set(WINDOWS)
    assert [(c["channel"], c["department"]) for c in complaints] == [("public", "市场监管局")]
    status, cases = await liandong.call("GET", "/api/efficiency/cases?state=all", as_user="supervisor")
    assert any(c["suspended"] for c in cases)
    ratings = []
    for case in cases:
        status, detail = await liandong.call("GET", f"/api/efficiency/cases/{case['id']}", as_user="supervisor")
        assert status == 200
        ratings += detail["ratings"]
        assert case["window_label"] == WINDOWS[case["department"]]
    assert [(r["moment"], r["verdict"]) for r in ratings] == [("completed", "satisfied")]
