"""The demo hall's approval platform: pushes cases through the public ingestion API as a department
system would, so the supervision page has something true to show within minutes of the first start.

It logs in as the hall's platform account and first plays an opening of stories, one event every few
seconds, each chosen to be caught by one rule: a case done on time and rated, one past 80 % of its
promise (yellow), one past its legal limit (red), a reviewer who also approves, a fee above the
standard, an acceptance without the documents, a suspension for the applicant, and a complaint from
the public. Then it keeps a steady trickle of ordinary cases moving one stage at a time, most of them
rated on completion. Everything goes over HTTP: what the page shows is what the server stored.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import aiohttp

from efficiency.calendar import WorkingCalendar
from efficiency.items import ApprovalItem, Stage

log = logging.getLogger(__name__)
PLATFORM_ACCOUNT = "hall-platform"  # the demo account the simulator pushes as (role system, every department)
STAFF = ("张敏", "王芳", "李强", "赵伟", "陈静", "刘洋", "杨帆", "黄磊")
APPLICANTS = ("某某餐饮有限公司", "李某", "某某科技有限公司", "王某某", "某某建设工程有限公司", "张某")
VERDICTS = (("satisfied", 8), ("basically", 2), ("unsatisfied", 1))


@dataclass
class Case:
    item: ApprovalItem
    window: str
    reference: str
    stages: list[Stage] = field(default_factory=list)  # still to go


def working_days_before(calendar: WorkingCalendar, day: date, n: int) -> date:
    """The working day `n` working days before `day`."""
    while n:
        day -= timedelta(days=1)
        n -= calendar.is_working(day)
    return day


class HallSimulator:
    def __init__(self, base_url: str, password: str, calendar: WorkingCalendar, items: Sequence[ApprovalItem],
                 windows: dict[str, str], every_s: float, seed: int | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._password = password
        self._calendar = calendar
        self._items = [i for i in items if i.department in windows]  # only departments with a window camera
        self._windows = windows  # department → its window label
        self._every_s = every_s
        self._random = random.Random(seed)
        self._numbers = itertools.count(1)
        self._events = itertools.count(1)
        self._token = ""
        self._run = f"{datetime.now(calendar.zone):%m%d%H%M}"  # case numbers unique per start

    async def run(self) -> None:
        if not self._items:
            log.warning("demo hall: no approval item belongs to a department with a window camera; no cases")
            return
        # Its own server on this machine: a self-signed certificate is expected, not a fault.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                         connector=aiohttp.TCPConnector(ssl=False)) as http:
            await self._log_in(http)
            log.info("demo hall: pushing cases through the ingestion API as %s", PLATFORM_ACCOUNT)
            await self._opening(http)
            moving: list[Case] = []
            while True:
                await asyncio.sleep(self._every_s)
                try:
                    await self._tick(http, moving)
                except (aiohttp.ClientError, TimeoutError) as error:
                    log.warning("demo hall: a push failed (%s); carrying on", error)

    async def _log_in(self, http: aiohttp.ClientSession) -> None:
        for _ in range(120):  # the server may still be starting to listen
            try:
                async with http.post(f"{self._base}/api/login", json={"username": PLATFORM_ACCOUNT,
                                                                      "password": self._password}) as response:
                    if response.status == 200:
                        self._token = (await response.json())["token"]
                        return
                    log.warning("demo hall: %s cannot log in (%s)", PLATFORM_ACCOUNT, response.status)
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(1)

    async def _post(self, http: aiohttp.ClientSession, path: str, body: dict[str, Any], *, public: bool = False
                    ) -> Any:
        headers = {} if public else {"Authorization": f"Bearer {self._token}"}
        async with http.post(f"{self._base}{path}", json=body, headers=headers) as response:
            answer = await response.json()
            if response.status >= 300:
                log.warning("demo hall: %s refused %s: %s", path, body.get("event_id", ""), answer)
            return answer

    async def _event(self, http: aiohttp.ClientSession, case: Case, kind: str, at: datetime,
                     stage: Stage | None = None, **more: Any) -> None:
        body = {"department": case.item.department, "case": case.reference, "item": case.item.code,
                "event_id": f"{case.reference}-{next(self._events)}", "kind": kind, "at": at.isoformat(),
                "window": case.window, **more}
        if stage is not None:
            body["stage"] = stage
        await self._post(http, "/api/efficiency/events", body)

    def _case(self, item: ApprovalItem) -> Case:
        return Case(item, self._windows[item.department], f"{item.code}-{self._run}-{next(self._numbers):04d}",
                    list(item.stages))

    def _item(self, wanted: str) -> ApprovalItem:
        """The catalogue item `wanted`, or any with a window if this hall has none such."""
        return next((i for i in self._items if i.code == wanted), self._items[0])

    async def _story(self, http: aiohttp.ClientSession, item: ApprovalItem, accepted: datetime,
                     actors: Sequence[str] = (), fee: float | None = None, documents: bool = True,
                     through: int = 99) -> Case:
        """A case accepted at `accepted`, taken through `through` stages an hour apart (never past now)."""
        case = self._case(item)
        now = datetime.now(self._calendar.zone)
        for n, stage in enumerate(item.stages[:through]):
            at = min(accepted + timedelta(hours=n), now - timedelta(seconds=len(item.stages) - n))
            actor = actors[n] if n < len(actors) else STAFF[n % len(STAFF)]
            extra: dict[str, Any] = {"actor": actor}
            if stage is Stage.ACCEPT:
                extra["applicant"] = self._random.choice(APPLICANTS)
                extra["documents"] = list(item.required_documents) if documents else []
            if stage is Stage.COMPLETE and fee is not None:
                extra["fee_yuan"] = fee
            await self._event(http, case, "stage", at, stage, **extra)
            await asyncio.sleep(0.2)
        return case

    def _days_ago(self, n: int) -> datetime:
        today = datetime.now(self._calendar.zone).date()
        return self._calendar.midnight(working_days_before(self._calendar, today, n)) + timedelta(hours=9, minutes=30)

    async def _opening(self, http: aiohttp.ClientSession) -> None:
        now = datetime.now(self._calendar.zone)
        pause = self._every_s / 3
        done = await self._story(http, self._item("SC-004"), now - timedelta(hours=1), through=99)
        await self._rate(http, done, "completed", "satisfied")
        await asyncio.sleep(pause)
        yellow = self._item("ZR-003")  # promised 10, legal 30: nine working days on, past 80 % of the promise
        await self._story(http, yellow, self._days_ago(int(yellow.promised_days * 0.8) + 1), through=2)
        await asyncio.sleep(pause)
        red = self._item("GA-003")  # legal 20: twenty-one working days on, past the law
        await self._story(http, red, self._days_ago(red.legal_days + 1), through=3)
        await asyncio.sleep(pause)
        await self._story(http, self._item("SC-001"), now - timedelta(hours=5), actors=("张敏", "王芳", "李强", "李强"),
                          through=4)  # the reviewer approves too
        await asyncio.sleep(pause)
        fee = self._item("ZR-004")  # the standard is 80 yuan
        await self._story(http, fee, now - timedelta(hours=4), fee=fee.fee_limit_yuan + 70)
        await asyncio.sleep(pause)
        await self._story(http, self._item("GA-002"), now - timedelta(hours=1), documents=False, through=1)
        await asyncio.sleep(pause)
        waiting = await self._story(http, self._item("SW-002"), now - timedelta(hours=3), through=2)
        await self._event(http, waiting, "suspend", now - timedelta(hours=1), actor="王芳")
        await asyncio.sleep(pause)
        await self._post(http, "/api/public/complaints", {
            "department": done.item.department, "window": done.window, "complainant": "刘女士",
            "contact": "13800000000", "body": "窗口人员中途离开二十多分钟，排队的群众无人接待。"}, public=True)

    async def _rate(self, http: aiohttp.ClientSession, case: Case, moment: str, verdict: str) -> None:
        await self._post(http, "/api/public/ratings", {"department": case.item.department, "window": case.window,
                                                       "case": case.reference, "moment": moment,
                                                       "verdict": verdict}, public=True)

    async def _tick(self, http: aiohttp.ClientSession, moving: list[Case]) -> None:
        """A new case now and then; every moving case one stage on; a completed one mostly rated."""
        if len(moving) < 6 and self._random.random() < 0.5:
            moving.append(self._case(self._random.choice(self._items)))
        now = datetime.now(self._calendar.zone)
        for case in list(moving):
            stage = case.stages.pop(0)
            extra: dict[str, Any] = {"actor": self._random.choice(STAFF)}
            if stage is Stage.ACCEPT:
                extra["applicant"] = self._random.choice(APPLICANTS)
                extra["documents"] = list(case.item.required_documents)
            await self._event(http, case, "stage", now, stage, **extra)
            if not case.stages:
                moving.remove(case)
                if self._random.random() < 0.8:
                    verdict = self._random.choices([v for v, _ in VERDICTS], [w for _, w in VERDICTS])[0]
                    await self._rate(http, case, "completed", verdict)
