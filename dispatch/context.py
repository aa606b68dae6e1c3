"""What dispatch's routes and sockets share at run time, under one typed application key."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from dispatch.changes import TicketChanges
from dispatch.directory import Directory
from dispatch.fanout import EventStream
from dispatch.ids import IdReserves
from dispatch.routing import Router
from dispatch.taxonomy import Department, Taxonomy
from dispatch.views import Views


@dataclass(frozen=True)
class Dispatch:
    taxonomy: Taxonomy
    departments: dict[str, Department]
    router: Router
    directory: Directory
    views: Views
    ids: IdReserves
    events: EventStream
    changes: TicketChanges  # every person's action on a ticket, group-committed


DISPATCH = web.AppKey("dispatch", Dispatch)
