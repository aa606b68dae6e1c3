"""The demo licensing hall as the efficiency tests use it: the market regulator's approval system and
the events it sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tests.helpers import Liandong

CST = timezone(timedelta(hours=8))
MARKET = "市场监管局"
ITEM = {"department": MARKET, "code": "SC-001", "name": "食品经营许可", "legal_days": 20, "promised_days": 10,
        "required_documents": ["营业执照"], "fee_limit_yuan": 0.0}


async def market_system(liandong: Liandong) -> str:
    """The market regulator's approval system, with its own account; and the item it reports on."""
    system = await liandong.make_account("market-approvals", "市场监管局审批系统", "system", departments=[MARKET])
    status, body = await liandong.call("POST", "/api/efficiency/items", ITEM, as_user="supervisor")
    assert (status, body) == (200, {"code": "SC-001", "created": False}), body  # the demo catalogue has it
    return system


def event(case: str, n: int, kind: str, at: datetime, stage: str | None = None, **more: Any) -> dict[str, Any]:
    body = {"department": MARKET, "case": case, "item": "SC-001", "event_id": f"{case}-{n}", "kind": kind,
            "at": at.isoformat(), **more}
    if stage:
        body["stage"] = stage
    return body


def days_ago(days: float) -> datetime:
    return (datetime.now(UTC) - timedelta(days=days)).astimezone(CST)


async def send(liandong: Liandong, system: str, body: dict[str, Any]) -> tuple[int, Any]:
    return await liandong.call("POST", "/api/efficiency/events", body, as_user=system)
