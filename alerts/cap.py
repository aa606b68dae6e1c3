"""OASIS CAP 1.2 (ITU-T X.1303) public warnings built from incidents, and the Atom feed of those
currently in force. Plain functions: the publisher (cap_publisher.py) decides when to issue them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"

# GB/T 35561 type → CAP <category>; a category code stands for the subtypes without their own.
CATEGORY = {"101": "Met", "102": "Met", "103": "Geo", "104": "Geo", "105": "Fire", "201": "Fire",
            "202": "Transport", "203": "CBRNE", "204": "Infra", "205": "Safety", "301": "Health", "302": "Health",
            "401": "Security", "402": "Security", "1": "Env", "2": "Safety", "3": "Health", "4": "Security"}
# Characters XML 1.0 cannot hold. Input is refused at the boundary (base.messages.PLAIN); this keeps a
# document well formed whatever reached the database before that rule or by another road.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


SEVERITY = {1: "Extreme", 2: "Severe", 3: "Moderate", 4: "Minor"}  # I-IV
URGENCY = {1: "Immediate", 2: "Immediate", 3: "Expected", 4: "Expected"}


@dataclass(frozen=True)
class Issuer:
    address: str  # CAP <sender>: who issues the warnings
    name: str  # <senderName>
    utc_offset: timedelta  # CAP times carry an explicit offset (no "Z")
    radius_km: float  # the warned circle around the incident

    def time(self, moment: datetime) -> str:
        return moment.astimezone(timezone(self.utc_offset)).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Issued:
    identifier: str
    sent: datetime


def identifier(issuer: Issuer, incident_id: int, seq: int) -> str:
    # CAP forbids spaces, commas and "<" "&" in identifiers.
    return f"{issuer.address.replace('@', '.')}.incident-{incident_id}.{seq}"


def message(issuer: Issuer, incident: Mapping[str, Any], plan_name: str, msg_type: str, ident: str,
            sent: datetime, references: Sequence[Issued]) -> bytes:
    """One CAP 1.2 <alert> for an incident view (dispatch.views.Views.incident)."""
    ET.register_namespace("", CAP_NS)

    def add(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        element = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
        if text is not None:
            element.text = xml_text(text)
        return element

    alert = ET.Element(f"{{{CAP_NS}}}alert")
    add(alert, "identifier", ident)
    add(alert, "sender", issuer.address)
    add(alert, "sent", issuer.time(sent))
    add(alert, "status", "Actual")
    add(alert, "msgType", msg_type)
    add(alert, "scope", "Public")
    if references:
        add(alert, "references", " ".join(f"{issuer.address},{r.identifier},{issuer.time(r.sent)}"
                                          for r in references))
    info = add(alert, "info")
    add(info, "language", "zh-CN")
    type_code, severity = incident["type_code"], int(incident["severity"])
    add(info, "category", CATEGORY.get(type_code) or CATEGORY.get(incident["category"], "Other"))
    add(info, "event", incident["type_name"] or type_code)
    add(info, "responseType", "Monitor" if msg_type == "Cancel" else "Prepare")
    add(info, "urgency", "Past" if msg_type == "Cancel" else URGENCY[severity])
    add(info, "severity", SEVERITY[severity])
    add(info, "certainty", "Observed")
    add(info, "senderName", issuer.name)
    verb = {"Alert": "发布", "Update": "更新", "Cancel": "解除"}[msg_type]
    title = f"{verb}{incident['severity_label']}{incident['type_name']}预警"
    add(info, "headline", f"{title}：{incident['address']}" if incident["address"] else title)
    add(info, "description", incident["description"] or incident["type_name"])
    if msg_type != "Cancel":
        add(info, "instruction", f"按{plan_name}做好防范，服从现场指挥。")
    area = add(info, "area")
    add(area, "areaDesc", incident["address"] or f"{incident['location']['lat']:.5f},{incident['location']['lon']:.5f}")
    add(area, "circle", f"{incident['location']['lat']:.6f},{incident['location']['lon']:.6f} {issuer.radius_km:g}")
    return bytes(ET.tostring(alert, encoding="utf-8", xml_declaration=True))


def feed(issuer: Issuer, base_url: str, entries: Sequence[Mapping[str, Any]], updated: datetime) -> bytes:
    """An Atom feed of the CAP messages in force: (identifier, headline, sent) per entry."""
    ET.register_namespace("", ATOM_NS)

    def add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", {k: xml_text(v) for k, v in attributes.items()})
        if text is not None:
            element.text = xml_text(text)
        return element

    root = ET.Element(f"{{{ATOM_NS}}}feed")
    add(root, "id", f"urn:liandong:cap-feed:{issuer.address}")
    add(root, "title", f"{issuer.name} · CAP")
    add(root, "updated", issuer.time(updated))
    author = add(root, "author")
    add(author, "name", issuer.name)
    add(root, "link", rel="self", href=f"{base_url}/api/cap/feed")
    for entry in entries:
        item = add(root, "entry")
        add(item, "id", f"urn:liandong:cap:{entry['identifier']}")
        add(item, "title", entry["headline"])
        add(item, "updated", issuer.time(entry["sent"]))
        add(item, "link", rel="alternate", type="application/cap+xml",
            href=f"{base_url}/api/cap/{entry['identifier']}")
        add(item, "summary", entry["headline"])
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def headline(xml: str) -> str:
    found = ET.fromstring(xml).find(f"{{{CAP_NS}}}info/{{{CAP_NS}}}headline")
    return found.text or "" if found is not None else ""
