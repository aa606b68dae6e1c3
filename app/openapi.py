"""The OpenAPI 3.1 document, made from the route declarations the router serves (base.http.Api) and
the same message types the handlers decode, so the two cannot drift."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from base.errors import HTTP_STATUS
from base.http import Api, Route

_PARAMETERS: dict[str, dict[str, Any]] = {
    "id": {"type": "integer", "minimum": 1},
    "key": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
    "identifier": {"type": "string"},
}
_DESCRIPTIONS = {400: "a query parameter is invalid, or the body is not JSON", 401: "not logged in",
                 403: "not allowed for this account", 404: "no such resource",
                 409: "conflicts with the current state", 413: "body too large", 415: "body is not JSON",
                 422: "a field is invalid (the error names it)",
                 429: "too many failed log-ins: try again after Retry-After seconds",
                 503: "the database cannot be reached now: try again after Retry-After seconds"}
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string", "enum": sorted({*HTTP_STATUS, "too_large"})},
                   "message": {"type": "string"}, "field": {"type": "string"}}}}}


def _errors(route: Route) -> list[int]:
    """The error statuses a route can answer, from what its declaration says it takes."""
    statuses: set[int] = set()
    if route.roles is not None:
        statuses |= {401, 403} if route.roles else {401}
    if (route.body is not None and route.status != 101) or route.uploads:
        statuses |= {400, 413, 415, 422}
    if "{" in route.path:
        statuses.add(404)
    if route.query:
        statuses.add(400)
    if route.conflicts:
        statuses.add(409)
    if route.deadline and route.status != 101:
        statuses.add(503)  # the database cannot be reached now, or did not answer within the deadline
    return sorted(statuses | set(route.also))


def _operation(route: Route) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "switching protocols" if route.status == 101 else "success"}
    if route.status != 101:
        success["content"] = {route.produces: {}}
    operation: dict[str, Any] = {"summary": route.summary, "responses": {
        str(route.status): success,
        **{str(s): success for s in route.also if s < 400},  # another success (e.g. 200 replaced, 201 created)
        **{str(s): {"description": _DESCRIPTIONS[s], "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}},
            **({"headers": {"Retry-After": {"schema": {"type": "integer"}}}} if s in (429, 503) else {})}
           for s in _errors(route) if s >= 400}}}
    if route.roles is not None:
        operation["security"] = [{"bearer": []}]
        operation["description"] = "Roles: " + (", ".join(r.value for r in route.roles) or "any account") + "."
    parameters = [{"name": name, "in": "path", "required": True, "schema": _PARAMETERS.get(name, {"type": "string"})}
                  for name in re.findall(r"\{(\w+)\}", route.path)]
    parameters += [{"name": name.rstrip("!"), "in": "query", "required": name.endswith("!"),
                    "schema": {"type": "string"}} for name in route.query]
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        ref = {"$ref": f"#/components/schemas/{route.body.__name__}"}
        if route.status == 101:  # a WebSocket's first message is documented, not sent as a body
            operation["description"] = operation.get("description", "") + f" First message: {route.body.__name__}."
            operation["x-first-message"] = ref
        else:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref}}}
    if route.uploads:
        operation["requestBody"] = {"required": True, "content": {
            kind: {"schema": {"type": "string", "format": "binary"}} for kind in route.uploads}}
    return operation


def document(apis: Iterable[Api]) -> dict[str, Any]:
    routes = [route for api in apis for route in api.routes]
    bodies = sorted({r.body for r in routes if r.body is not None}, key=lambda kind: kind.__name__)
    _, schemas = msgspec.json.schema_components(bodies, ref_template="#/components/schemas/{name}")
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    paths["/api/openapi.json"] = {"get": {"summary": "This document", "responses": {"200": {
        "description": "success", "content": {"application/json": {}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Liandong", "version": "0.1.0",
                 "description": "Emergency command: incidents, routed dispatch tickets, terminals, feedback;"
                                " window cameras, recording, supervision alerts and the monitoring wall."},
        "paths": paths,
        "components": {"schemas": {**schemas, "Error": _ERROR},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
