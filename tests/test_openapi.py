"""The OpenAPI document describes exactly the routes the server has, with the roles the server enforces."""

from __future__ import annotations

from typing import Any

from app.config import Config
from app.openapi import document
from app.server import APIS, build_app
from tests.helpers import Liandong, example_path

DOCUMENTED_PREFIXES = ("/api/", "/healthz", "/ws/")


def test_every_api_route_is_documented_and_every_documented_route_exists(config: Config) -> None:
    app = build_app(config)
    served = {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
              if route.resource is not None and route.resource.canonical.startswith(DOCUMENTED_PREFIXES)
              and route.method != "HEAD"}
    documented = {(method, path) for path, operations in document(APIS)["paths"].items() for method in operations}
    assert served == documented


async def test_the_server_enforces_the_roles_the_document_states(liandong: Liandong) -> None:
    """Every HTTP operation that says it needs a log-in answers 401 without one, and one that names roles
    answers 403 to an account without them; a public one never asks for a log-in."""
    spec = document(APIS)
    probed = 0
    for path, operations in spec["paths"].items():
        if path.startswith("/ws/"):
            continue  # sockets check roles at hello: tests/test_sockets.py
        for method, operation in operations.items():
            status, _ = await liandong.call(method.upper(), example_path(path))
            if "security" not in operation:
                assert status != 401, (method, path)
                continue
            assert status == 401, (method, path, status)
            roles = operation["description"].removeprefix("Roles: ").rstrip(".").split(", ")
            outsider = next((u for u, r in (("fire-xiling", "operator"), ("supervisor", "supervisor"),
                                            ("dispatcher", "dispatcher")) if r not in roles), None)
            if outsider is not None and roles != ["any account"]:
                status, body = await liandong.call(method.upper(), example_path(path), as_user=outsider)
                assert status == 403, (method, path, outsider, status, body)
            probed += 1
    assert probed >= 35  # the document lists this many guarded operations; a sanity check that all were probed


async def test_the_document_is_served_and_its_schemas_resolve(liandong: Liandong) -> None:
    status, spec = await liandong.call("GET", "/api/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.1")
    schemas = spec["components"]["schemas"]
    report = spec["paths"]["/api/incidents"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    name = report["$ref"].rsplit("/", 1)[1]
    assert set(schemas[name]["required"]) == {"type_code", "severity", "location"}
    refs = [value for value in _walk(spec) if isinstance(value, str) and value.startswith("#/components/schemas/")]
    assert refs and all(ref.rsplit("/", 1)[1] in schemas for ref in refs)
    errors: dict[str, Any] = spec["paths"]["/api/tickets/{id}/acknowledge"]["post"]["responses"]
    assert {"401", "403", "404", "409", "503"} <= set(errors)
    assert "Retry-After" in errors["503"]["headers"]
    playback = spec["paths"]["/api/cameras/{id}/playback"]["get"]["parameters"]
    assert {(p["name"], p["required"]) for p in playback if p["in"] == "query"} == {("since", True), ("until", True)}


def _walk(node: object) -> list[object]:
    if isinstance(node, dict):
        return [x for v in node.values() for x in [v, *_walk(v)]]
    if isinstance(node, list):
        return [x for v in node for x in [v, *_walk(v)]]
    return []
