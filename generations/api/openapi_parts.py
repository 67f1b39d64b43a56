"""The building blocks of the OpenAPI document (api/openapi.py and the modules it gathers)."""

from __future__ import annotations

from typing import Any

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_answer(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def errors(schema: str) -> dict[str, Any]:
    return {"default": json_answer(ref(schema), "An error, naming the field where one is to blame")}


def op(
    summary: str, operation_id: str, ok: dict[str, Any], errors_schema: str = "Error",
    **extra: object,
) -> dict[str, Any]:  # fmt: skip
    """An operation: its 200 answer, and its errors in the surface's shape."""
    return {"summary": summary, "operationId": operation_id, **extra,
            "responses": {"200": ok, **errors(errors_schema)}}  # fmt: skip


def query(name: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema}
