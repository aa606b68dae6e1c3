"""The OpenAPI 3.1 document, built from the same message types the handlers decode.

A test checks that it lists exactly the routes the server has.
"""

from __future__ import annotations

from typing import Any

import msgspec

from command import api
from command.intake import IncidentReport, RoutingQuery
from command.plans import PlanBody
from command.plans_api import SeverityChange
from command.surge_api import DuplicateQuery, MergeRequest
from dispatch.protocol import Ack, FeedbackMessage, Hello, Received, Reject
from video.api import ExportRequest
from video.cameras import CameraSpec
from video.supervision_api import CloseBody
from video.wall_ws import FocusHello, Show, WallHello

_BODIES: list[type] = [
    api.Credentials, IncidentReport, RoutingQuery, api.NewSubcentre, api.Reason, api.FeedbackBody, PlanBody,
    SeverityChange, DuplicateQuery, MergeRequest, CameraSpec, ExportRequest, CloseBody, WallHello, Show, FocusHello,
    Hello, Received, Ack, FeedbackMessage, Reject]

_ERRORS = {"400": "malformed request", "401": "not logged in", "403": "not allowed for this account",
           "404": "no such resource", "409": "conflicts with the current state", "413": "body too large",
           "415": "body is not JSON", "422": "a field is invalid (the error names it)"}

# (method, path): (summary, request body component or None, success status, auth roles or None)
OPERATIONS: dict[tuple[str, str], tuple[str, str | None, int, str | None]] = {
    ("post", "/api/login"): ("Log in; returns a bearer token", "Credentials", 200, None),
    ("get", "/api/me"): ("The logged-in account", None, 200, "any"),
    ("get", "/api/incident-types"): ("GB/T 35561 incident categories, subtypes and severity levels", None, 200,
                                     None),
    ("get", "/api/departments"): ("Departments and the incident types they handle", None, 200, None),
    ("get", "/api/subcentres"): ("Sub-centres with jurisdictions as a GeoJSON FeatureCollection (WGS-84)",
                                 None, 200, "any"),
    ("get", "/api/map"): ("The pages' base map: district outlines (GeoJSON, WGS-84, simplified to"
                          " map.boundary_tolerance_m) and the configured tile service, if any", None, 200, "any"),
    ("post", "/api/subcentres"): ("Register a sub-centre with its jurisdiction", "NewSubcentre", 201,
                                  "dispatcher"),
    ("post", "/api/routing/preview"): ("Which sub-centres an incident would go to", "RoutingQuery", 200,
                                       "dispatcher"),
    ("post", "/api/incidents"): ("Record an incident; its tickets are stored before this returns",
                                 "IncidentReport", 201, "dispatcher"),
    ("get", "/api/incidents"): ("List incidents, newest first (query: state, since, until, limit); each ticket"
                                " with its stage times, plan limits and escalations so far", None, 200,
                                "dispatcher, supervisor"),
    ("get", "/api/incidents/{id}"): ("One incident with its tickets (with limits and escalations) and timeline",
                                     None, 200, "any"),
    ("post", "/api/tickets/{id}/acknowledge"): ("Acknowledge a ticket", None, 200, "operator"),
    ("post", "/api/tickets/{id}/feedback"): ("Report back (信息反馈); closes the ticket", "FeedbackBody", 200,
                                             "operator"),
    ("post", "/api/tickets/{id}/reject"): ("Reject a ticket with a reason", "Reason", 200, "operator"),
    ("post", "/api/tickets/{id}/cancel"): ("Cancel a ticket", "Reason", 200, "dispatcher"),
    ("get", "/api/incidents/{id}/notifications"): ("Messages sent about an incident and their outcome", None, 200,
                                                   "dispatcher, supervisor"),
    ("post", "/api/duplicates"): ("Likely duplicates of a report about to be recorded", "DuplicateQuery", 200,
                                  "dispatcher"),
    ("get", "/api/incidents/{id}/duplicates"): ("Likely duplicates of an incident", None, 200,
                                                "dispatcher, supervisor"),
    ("post", "/api/incidents/{id}/dispatch"): ("Dispatch a pending report", None, 200, "dispatcher"),
    ("post", "/api/incidents/{id}/merge"): ("Merge a pending report into the incident it repeats: no new ticket,"
                                            " the caller kept on that incident's timeline", "MergeRequest", 200,
                                            "dispatcher"),
    ("get", "/api/cap/feed"): ("Atom feed of the public warnings (CAP 1.2) in force", None, 200, None),
    ("get", "/api/cap/{identifier}"): ("One CAP 1.2 message (Alert, Update or Cancel)", None, 200, None),
    ("get", "/api/incidents/{id}/decision-support"): ("Nearest sub-centres, the affected area and the facilities"
                                                      " in it, similar incidents nearby", None, 200,
                                                      "dispatcher, supervisor"),
    ("get", "/api/statistics"): ("Incidents by type, district and day; response-interval percentiles per"
                                 " sub-centre (query: since, until)", None, 200, "dispatcher, supervisor"),
    ("get", "/api/statistics/tickets.csv"): ("One row per ticket with its response intervals (CSV)", None, 200,
                                             "dispatcher, supervisor"),
    ("get", "/api/statistics/chart.png"): ("A chart of the statistics (query: kind=by_day|response)", None, 200,
                                           "dispatcher, supervisor"),
    ("get", "/api/cameras"): ("Window cameras (stream credentials removed)", None, 200, "dispatcher, supervisor"),
    ("get", "/api/cameras/{id}"): ("One camera", None, 200, "dispatcher, supervisor"),
    ("post", "/api/cameras"): ("Register, or re-register by code, a window camera", "CameraSpec", 201,
                               "supervisor, dispatcher"),
    ("get", "/api/cameras/{id}/playback"): ("A camera's recording between since and until (at most 24 h), one MP4"
                                            " joined without re-encoding", None, 200, "supervisor, dispatcher"),
    ("post", "/api/cameras/{id}/exports"): ("A signed evidence export (zip: segments, SHA-256 manifest,"
                                            " Ed25519 signature)", "ExportRequest", 200, "supervisor"),
    ("get", "/api/video/signing-key"): ("The public key evidence exports are signed with", None, 200, None),
    ("get", "/api/cameras/{id}/tile"): ("The camera's latest low-resolution picture (JPEG)", None, 200,
                                        "supervisor, dispatcher"),
    ("post", "/api/cameras/{id}/empty-seat"): ("The seat is empty now: the next picture becomes what presence is"
                                               " judged against", None, 202, "supervisor"),
    ("get", "/api/supervision/alerts"): ("Supervision alerts, newest first (query: open, since, limit)", None, 200,
                                         "supervisor, dispatcher"),
    ("get", "/api/supervision/alerts/{id}/snapshot"): ("The picture that raised an alert (JPEG)", None, 200,
                                                       "supervisor, dispatcher"),
    ("post", "/api/supervision/alerts/{id}/acknowledge"): ("Acknowledge a supervision alert", None, 200,
                                                           "supervisor"),
    ("post", "/api/supervision/alerts/{id}/close"): ("Close a supervision alert with a note", "CloseBody", 200,
                                                     "supervisor"),
    ("get", "/api/supervision/statistics"): ("Per department, window and day (query: since, until as dates):"
                                             " absence minutes and alerts by kind", None, 200,
                                             "supervisor, dispatcher"),
    ("get", "/api/plans"): ("Current contingency plans", None, 200, "any"),
    ("get", "/api/plans/{key}"): ("Every version of one plan", None, 200, "any"),
    ("put", "/api/plans/{key}"): ("Save a new version of a plan (running incidents keep theirs)", "PlanBody", 200,
                                  "dispatcher"),
    ("delete", "/api/plans/{key}"): ("Retire a plan", None, 200, "dispatcher"),
    ("post", "/api/incidents/{id}/severity"): ("Raise an incident's severity: activates the larger plan and"
                                               " dispatches the departments it adds", "SeverityChange", 200,
                                               "dispatcher"),
    ("get", "/api/openapi.json"): ("This document", None, 200, None),
    ("get", "/healthz"): ("Database and LISTEN connection health", None, 200, None),
    ("get", "/ws/terminal"): ("Sub-centre terminal WebSocket: send Hello first, then Received, Ack,"
                              " FeedbackMessage, Reject", "Hello", 101, "operator"),
    ("get", "/ws/console"): ("Dispatchers' live event WebSocket: send Hello (token) first", None, 101,
                             "dispatcher, supervisor"),
    ("get", "/ws/wall"): ("Monitoring wall WebSocket: send WallHello, then Show; tiles arrive as binary (uint32"
                          " camera id, float64 epoch ms, JPEG), alert lists as text", "WallHello", 101,
                          "supervisor, dispatcher"),
    ("get", "/ws/focus"): ("One camera in full motion: send FocusHello; a codec message, then fragmented MP4"
                           " (mode mse) or JPEG pictures (mode jpeg) as binary", "FocusHello", 101,
                           "supervisor, dispatcher"),
}


def document() -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components(_BODIES, ref_template="#/components/schemas/{name}")
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), (summary, body, status, roles) in OPERATIONS.items():
        operation: dict[str, Any] = {"summary": summary, "responses": {
            str(status): {"description": "switching protocols" if status == 101 else "success"},
            **({k: {"description": v} for k, v in _ERRORS.items()} if method in ("post", "put") else {})}}
        if roles:
            operation["security"] = [{"bearer": []}]
            operation["description"] = f"Roles: {roles}."
        if "{id}" in path:
            operation["parameters"] = [{"name": "id", "in": "path", "required": True,
                                        "schema": {"type": "integer", "minimum": 1}}]
        if "{identifier}" in path:
            operation["parameters"] = [{"name": "identifier", "in": "path", "required": True,
                                        "schema": {"type": "string"}}]
        if "{key}" in path:
            operation["parameters"] = [{"name": "key", "in": "path", "required": True,
                                        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}}]
        if body and status != 101:  # a WebSocket's first message is documented, not sent as a body
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{body}"}}}}
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Liandong", "version": "0.1.0",
                 "description": "Emergency command: incidents, routed dispatch tickets, terminals, feedback."},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
