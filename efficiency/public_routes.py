"""What the public reaches without an account: the complaint form and the window's rating tablet.

Anti-abuse: complaints are limited per address (a handful an hour; the hotline takes the rest), every
field is bounded, and a rating must name a real case of that window at a moment it has reached, once.
"""

from __future__ import annotations

import math
import time

from aiohttp import web

from base import audit
from base.context import PLATFORM
from base.errors import TooMany
from base.http import ANYONE, Api, body_of, client_address, reply, text_param
from base.throttle import Window
from efficiency import complaints, ratings, store
from efficiency.context import EFFICIENCY

api = Api()
COMPLAINT_LIMIT = web.AppKey("complaint_limit", Window)


@api.post("/api/public/complaints", "A complaint from the public (投诉), no account needed; at most 5 an hour from"
          " one address", roles=ANYONE, body=complaints.NewComplaint, status=201, also=(404, 429))
async def public_complaint(request: web.Request) -> web.Response:
    complaint = await body_of(request, complaints.NewComplaint)
    address, limit, now = client_address(request), request.app[COMPLAINT_LIMIT], time.monotonic()
    if wait := limit.wait_s(address, now):
        raise TooMany(f"too many complaints from this address; try again in {math.ceil(wait)} s or call the"
                      " hotline", math.ceil(wait), "body")
    efficiency = request.app[EFFICIENCY]
    received = await complaints.receive(request.app[PLATFORM].pool, efficiency.calendar, complaint, "public",
                                        address, efficiency.complaint_days, efficiency.yellow_share,
                                        audit.Actor(None, "public", address))
    limit.failed(address, now)  # counted once stored: a refused form costs the sender nothing
    return reply(received, status=201)


@api.post("/api/public/ratings", "The applicant's rating at the window (满意/基本满意/不满意) of a case just accepted"
          " or completed there; once per case and moment", roles=ANYONE, body=ratings.Rating, status=201,
          conflicts=True, also=(404,))
async def public_rating(request: web.Request) -> web.Response:
    rating = await body_of(request, ratings.Rating)
    return reply({"id": await ratings.rate(request.app[PLATFORM].pool, rating)}, status=201)


@api.get("/api/public/windows/waiting", "The case a window's rating tablet offers now (null: none)", roles=ANYONE,
         query=("department!", "window!"))
async def waiting(request: web.Request) -> web.Response:
    department, window = (text_param(request, name, required=True) or "" for name in ("department", "window"))
    return reply(await ratings.waiting(request.app[PLATFORM].pool, department, window))


@api.get("/api/public/departments", "The hall's departments, for the complaint form", roles=ANYONE)
async def departments(request: web.Request) -> web.Response:
    return reply(await store.departments(request.app[PLATFORM].pool))
