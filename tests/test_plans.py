"""Contingency plans: the most specific wins, ambiguity is refused, versions stay with incidents,
and raising the severity brings in the larger plan's departments once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.config import load
from command.demo import DEMO_PLANS
from command.plans import DepartmentOrder, Plan, PlanBody, PlanBook, check
from dispatch.taxonomy import Severity
from tests.helpers import Liandong

XILING = (111.29, 30.70)
TAXONOMY = load(environ={}).taxonomy


def body(types: list[str], levels: list[int], departments: list[str], name: str = "plan") -> PlanBody:
    return PlanBody(name=name, types=types, levels=levels, departments=[DepartmentOrder(d) for d in departments])


def test_a_subtype_plan_beats_its_category_and_an_exact_level_beats_a_range() -> None:
    book = PlanBook(TAXONOMY, [
        Plan("nature", 1, body(["1"], [1, 2, 3, 4], ["civil_affairs"])),
        Plan("flood", 1, body(["101"], [1, 2, 3, 4], ["water"])),
        Plan("flood-worst", 1, body(["101"], [1], ["water", "health"])),
    ])
    def chosen(type_code: str, severity: Severity) -> str | None:
        plan = book.select(type_code, severity)
        return plan.key if plan else None

    assert chosen("102", Severity.III) == "nature"
    assert chosen("101", Severity.III) == "flood"
    assert chosen("101", Severity.I) == "flood-worst"
    assert chosen("201", Severity.I) is None


def test_two_equally_specific_plans_for_the_same_type_and_level_are_ambiguous() -> None:
    book = PlanBook(TAXONOMY, [Plan("flood", 1, body(["101"], [1, 2], ["water"]))])
    problem = book.ambiguity("flood-too", body(["101"], [2, 3], ["water"]))
    assert problem is not None and "101" in problem and "II" in problem and "flood" in problem
    assert book.ambiguity("flood-low", body(["101"], [3, 4], ["water"])) is None
    assert book.ambiguity("flood", body(["101"], [2, 3], ["water"])) is None  # a new version of itself


def test_the_demo_plans_are_valid_and_unambiguous() -> None:
    departments = list(load(environ={}).departments)
    book = PlanBook(TAXONOMY)
    for key, plan in DEMO_PLANS.items():
        check(plan, TAXONOMY, departments)
        assert book.ambiguity(key, plan) is None, key
        book.plans[key] = Plan(key, 1, plan)
    assert {d for p in DEMO_PLANS.values() for d in (o.code for o in p.departments)} == set(departments)


async def test_an_edited_plan_applies_to_new_incidents_and_running_ones_keep_theirs(liandong: Liandong) -> None:
    before = await liandong.report("101", 4, *XILING)  # the demo flood plan, version 1: water only
    assert before["routing"]["plan"]["key"] == "flood" and [t["department"] for t in before["tickets"]] == ["water"]
    edited = {"name": "洪涝灾害处置预案（修订）", "types": ["101"], "levels": [3, 4],
              "departments": [{"code": "water", "tasks": ["巡查堤防"]}, {"code": "civil_affairs", "tasks": []}],
              "limits": {"deliver_s": 20, "acknowledge_s": 40, "feedback_s": 3600}}
    status, saved = await liandong.call("PUT", "/api/plans/flood", edited, as_user="dispatcher")
    assert (status, saved) == (200, {"key": "flood", "version": 2})

    after = await liandong.report("101", 4, *XILING)
    assert after["plan"] == {"key": "flood", "version": 2}
    assert sorted(t["department"] for t in after["tickets"]) == ["civil_affairs", "water"]
    unchanged = await liandong.incident(before["id"])
    assert unchanged["plan"] == {"key": "flood", "version": 1} and len(unchanged["tickets"]) == 1
    activation = next(e for e in unchanged["timeline"] if e["kind"] == "plan.activated")
    assert activation["at"] == unchanged["created_at"]

    status, history = await liandong.call("GET", "/api/plans/flood", as_user="dispatcher")
    assert [v["version"] for v in history] == [1, 2]
    status, _ = await liandong.call("DELETE", "/api/plans/flood", as_user="dispatcher")
    assert status == 200
    fallback = await liandong.report("101", 4, *XILING)  # no plan now: config's responsibilities
    assert fallback["plan"] is None and [t["department"] for t in fallback["tickets"]] == ["water"]


async def test_raising_the_severity_adds_the_larger_plans_departments_without_duplicating(
        liandong: Liandong) -> None:
    water = await liandong.terminal("water")
    try:
        flood = await liandong.report("101", 4, *XILING)
        first = await water.next_ticket()
        status, raised = await liandong.call("POST", f"/api/incidents/{flood['id']}/severity", {"severity": 2},
                                             as_user="dispatcher")
        assert status == 200, raised
        assert raised["plan"] == {"key": "flood-severe", "version": 1}
        assert sorted(t["department"] for t in raised["added_tickets"]) == ["civil_affairs", "civil_defence",
                                                                            "health"]
        for _ in range(50):  # the water terminal hears the new level on the ticket it has
            if water.tickets[first["id"]]["incident"]["severity"] == 2:
                break
            await asyncio.sleep(0.02)
        assert water.tickets[first["id"]]["incident"]["severity"] == 2
        assert water.tickets[first["id"]]["alert"]["tone"] == "siren"
        assert water.new_tickets.empty()  # no second water ticket
    finally:
        await water.close()
    stored = await liandong.incident(flood["id"])
    assert sorted(t["department"] for t in stored["tickets"]) == ["civil_affairs", "civil_defence", "health", "water"]
    kinds = [e["kind"] for e in stored["timeline"]]
    assert kinds.count("plan.activated") == 2 and "incident.severity_raised" in kinds

    status, body = await liandong.call("POST", f"/api/incidents/{flood['id']}/severity", {"severity": 3},
                                       as_user="dispatcher")
    assert (status, body["error"]["code"], body["error"]["field"]) == (422, "not_more_severe", "severity")
    status, again = await liandong.call("POST", f"/api/incidents/{flood['id']}/severity", {"severity": 1},
                                        as_user="dispatcher")
    assert status == 200 and again["added_tickets"] == []  # same departments at level I: nobody twice


@pytest.mark.parametrize("plan, status, code, field", [
    ({"name": "x", "types": ["101"], "levels": [1], "departments": [{"code": "police"}]}, 422, "invalid_plan",
     "departments[0].code"),
    ({"name": "x", "types": ["999"], "levels": [1], "departments": [{"code": "water"}]}, 422, "invalid_plan",
     "types[0]"),
    ({"name": "x", "types": ["101"], "levels": [5], "departments": [{"code": "water"}]}, 422, "invalid",
     "levels[0]"),
    ({"name": "x", "types": ["101"], "levels": [2, 3], "departments": [{"code": "water"}]}, 409, "ambiguous_plan",
     "types"),
    ({"name": "x", "types": ["101"], "levels": [1], "departments": []}, 422, "invalid", "departments"),
])
async def test_a_bad_or_ambiguous_plan_is_refused_naming_the_field(
        liandong: Liandong, plan: dict[str, Any], status: int, code: str, field: str) -> None:
    got, body = await liandong.call("PUT", "/api/plans/flood-extra", plan, as_user="dispatcher")
    assert (got, body["error"]["code"], body["error"]["field"]) == (status, code, field), body
    got, _ = await liandong.call("GET", "/api/plans/flood-extra", as_user="dispatcher")
    assert got == 404
    got, _ = await liandong.call("PUT", "/api/plans/Bad Key!", plan, as_user="dispatcher")
    assert got == 404
