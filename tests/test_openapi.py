"""The OpenAPI document describes exactly the routes the server has."""

from __future__ import annotations

from command.app import build_app
from command.config import Config
from tests.helpers import Liandong

DOCUMENTED_PREFIXES = ("/api/", "/healthz", "/ws/")


def test_every_api_route_is_documented_and_every_documented_route_exists(config: Config) -> None:
    app = build_app(config)
    served = {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
              if route.resource is not None and route.resource.canonical.startswith(DOCUMENTED_PREFIXES)
              and route.method != "HEAD"}
    from command.openapi import document

    documented = {(method, path) for path, operations in document()["paths"].items() for method in operations}
    assert served == documented


async def test_the_document_is_served_and_its_schemas_resolve(liandong: Liandong) -> None:
    status, spec = await liandong.call("GET", "/api/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.1")
    schemas = spec["components"]["schemas"]
    report = spec["paths"]["/api/incidents"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    name = report["$ref"].rsplit("/", 1)[1]
    assert set(schemas[name]["required"]) == {"type_code", "severity", "location"}
    refs = [value for value in _walk(spec) if isinstance(value, str) and value.startswith("#/components/schemas/")]
    assert refs and all(ref.rsplit("/", 1)[1] in schemas for ref in refs)


def _walk(node: object) -> list[object]:
    if isinstance(node, dict):
        return [x for v in node.values() for x in [v, *_walk(v)]]
    if isinstance(node, list):
        return [x for v in node for x in [v, *_walk(v)]]
    return []
