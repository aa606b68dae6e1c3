"""What each role may read beyond its own work: a supervisor limited to departments sees only their
windows' cameras and alerts, and a plan's notification addresses are for dispatchers and administrators."""

from __future__ import annotations

import asyncpg

from tests.helpers import Liandong
from tests.test_cameras import camera
from tests.test_sessions import closed_within, socket_with

TAX = "税务局"


async def tax_supervisor(liandong: Liandong) -> str:
    return await liandong.make_account("tax-supervisor", "税务局监察员", "supervisor", departments=[TAX])


async def test_a_departments_supervisor_sees_only_its_windows(liandong: Liandong, database_url: str) -> None:
    status, hall = await liandong.call("POST", "/api/cameras", camera("hall-w1"), as_user="supervisor")
    assert status == 201
    status, tax = await liandong.call("POST", "/api/cameras", camera("tax-w1", department=TAX), as_user="supervisor")
    assert status == 201
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "INSERT INTO supervision_alerts (kind, camera_id, began_at)"
            " VALUES ('absent', $1, now()), ('absent', $2, now()), ('storage', NULL, now())", hall["id"], tax["id"])
    finally:
        await connection.close()
    who = await tax_supervisor(liandong)

    status, listed = await liandong.call("GET", "/api/cameras", as_user=who)
    assert [c["code"] for c in listed] == ["tax-w1"]
    status, alerts = await liandong.call("GET", "/api/supervision/alerts", as_user=who)
    assert [a["camera_code"] for a in alerts] == ["tax-w1"]
    status, everything = await liandong.call("GET", "/api/supervision/alerts", as_user="supervisor")
    assert len(everything) == 3  # the centre's supervisor sees them all

    for method, path in (("GET", f"/api/cameras/{hall['id']}"),
                         ("GET", f"/api/cameras/{hall['id']}/playback?since=2026-11-24T08:00:00%2B08:00"
                                 "&until=2026-11-24T09:00:00%2B08:00"),
                         ("POST", f"/api/cameras/{hall['id']}/empty-seat"),
                         ("POST", f"/api/supervision/alerts/{everything[-1]['id']}/acknowledge")):
        status, body = await liandong.call(method, path, as_user=who)
        assert (status, body["error"]["code"]) == (403, "forbidden"), path
    status, body = await liandong.call("POST", "/api/cameras", camera("hall-w2"), as_user=who)
    assert status == 403  # nor registers another department's camera
    status, body = await liandong.call("POST", "/api/cameras", camera("hall-w1", department=TAX), as_user=who)
    assert status == 403  # nor takes one over by re-registering its code under its own department
    status, _ = await liandong.call("GET", "/api/audit", as_user=who)
    assert status == 403  # the centre's audit log is not a department's

    http = liandong.http
    async with http.ws_connect(liandong.base_url.replace("http", "ws") + "/ws/wall") as ws:
        await ws.send_json({"type": "hello", "token": liandong.tokens[who]})
        welcome = await ws.receive_json(timeout=10)
    assert [c["code"] for c in welcome["cameras"]] == ["tax-w1"]
    assert [a["camera_code"] for a in welcome["alerts"]] == ["tax-w1"]
    async with http.ws_connect(liandong.base_url.replace("http", "ws") + "/ws/focus") as ws:
        await ws.send_json({"type": "hello", "token": liandong.tokens[who], "camera": hall["id"]})
        refused = await ws.receive_json(timeout=10)
    assert (refused["type"], refused["code"]) == ("error", "forbidden")


async def test_narrowing_a_supervisors_departments_closes_the_wall_they_opened(liandong: Liandong) -> None:
    token = await liandong.token("supervisor")
    wall = await socket_with(liandong, "/ws/wall", token)
    status, accounts = await liandong.call("GET", "/api/accounts", as_user="admin")
    supervisor = next(a for a in accounts if a["username"] == "supervisor")
    status, _ = await liandong.call("PATCH", f"/api/accounts/{supervisor['id']}", {"departments": [TAX]},
                                    as_user="admin")
    assert status == 200
    _, took = await closed_within(wall, 10)
    assert wall.close_code == 4401 and took < 5  # it showed every department; it may not any more


async def test_plan_notification_addresses_are_for_dispatchers_and_administrators(liandong: Liandong) -> None:
    def addresses(plans: list[dict[str, object]]) -> set[object]:
        return {r.get("address") for p in plans for r in p["notify"]}  # type: ignore[attr-defined]

    status, plans = await liandong.call("GET", "/api/plans", as_user="dispatcher")
    notifying = next(p["key"] for p in plans if p["notify"])
    for user, sees in (("dispatcher", True), ("admin", True), ("supervisor", False), ("fire-xiling", False)):
        status, plans = await liandong.call("GET", "/api/plans", as_user=user)
        assert status == 200
        assert any(p["notify"] for p in plans)  # the names are there for everyone
        assert (addresses(plans) != {None}) is sees, user
        status, versions = await liandong.call("GET", f"/api/plans/{notifying}", as_user=user)
        assert ({r.get("address") for v in versions for r in v["body"]["notify"]} != {None}) is sees, user
    incident = await liandong.report("201", 1, 111.29, 30.70)  # a major fire: the plan tells the leader
    for user, sees in (("dispatcher", True), ("supervisor", False)):
        status, sent = await liandong.call("GET", f"/api/incidents/{incident['id']}/notifications", as_user=user)
        assert status == 200 and sent
        assert all(("address" in m) is sees for m in sent), user
