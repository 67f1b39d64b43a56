"""The batch endpoints' part of the OpenAPI document (api/batches.py, CONTRACT 7). Limits are
read from core/batches.py, where they are enforced."""

from __future__ import annotations

from typing import Any

from generations import catalog
from generations.api import batches as api
from generations.api.openapi_parts import JSON, json_answer, op, query, ref
from generations.core.batches import MAX_COUNT, MAX_ITEMS
from generations.core.idempotency import HEADER
from generations.core.validation import MAX_PROMPT_CHARS, MAX_SEED
from generations.vocabulary import Status

BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"}}


def batch_schemas(fields: dict[str, Any]) -> dict[str, Any]:
    lists = {
        "prompts": {
            "type": "array", "minItems": 1, "maxItems": MAX_ITEMS,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS},
            "description": "Instead of `prompt`: one take per prompt.",
        },
        "models": {
            "type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "uniqueItems": True,
            "items": {"type": "string", "enum": [m.key for m in catalog.MODELS]},
            "description": "Instead of `model`: the same prompt on each model (compare).",
        },
        "seeds": {
            "type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "uniqueItems": True,
            "items": {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
            "description": "Instead of `seed`: a seed sweep, one take per seed.",
        },
        "count": {
            "type": "integer", "minimum": 1, "maximum": MAX_COUNT,
            "description": "Variations with fresh seeds (instead of `seeds`).",
        },
    }  # fmt: skip
    item = {
        "type": "object",
        "required": ["generation_id", "prompt", "model", "seed", "status"],
        "properties": {
            "generation_id": {"type": "string"}, "prompt": {"type": "string"},
            "model": {"type": "string"}, "seed": {"type": "integer"},
            "status": {"type": "string", "enum": [s.value for s in Status]},
            "progress": {"type": "integer"}, "video_url": {"type": "string"},
            "thumbnail_url": {"type": "string"}, "error": {"type": "object"},
        },
    }  # fmt: skip
    return {
        "BatchRequest": {
            "type": "object",
            "description": "The generate fields every item shares, plus any of `prompts`, "
            f"`models`, `seeds` and `count`: the batch is their cross product, at most "
            f"{MAX_ITEMS} items, admitted or refused as a whole (429/402, nothing created).",
            "properties": {**fields, **lists},
        },
        "BatchCreated": {
            "type": "object",
            "required": ["success", "batch_id", "generations", "total"],
            "properties": {
                "success": {"type": "boolean"},
                "batch_id": {"type": "string"},
                "generations": {"type": "array", "items": {"type": "string"}},
                "total": {"type": "integer"},
                "status_url": {"type": "string"},
                "usage": {"type": "object"},
                "test_mode": {"type": "boolean"},
            },
        },  # fmt: skip
        "Batch": {
            "type": "object",
            "required": ["batch_id", "total", "done", "counts"],
            "properties": {
                "success": {"type": "boolean"},
                "batch_id": {"type": "string"},
                "title": {"type": "string"},
                "created_at": {"type": ["string", "null"]},
                "finished_at": {"type": ["string", "null"]},
                "total": {"type": "integer"},
                "done": {"type": "integer"},
                "counts": {
                    "type": "object",
                    "properties": {s.value: {"type": "integer"} for s in Status},
                },
                "pick": {"type": ["string", "null"]},
                "status_url": {"type": "string"},
                "items": {"type": "array", "items": item},
                "canceled": {"type": "integer"},
                "test_mode": {"type": "boolean"},
            },
        },  # fmt: skip
    }


def batch_paths(idempotency: str) -> dict[str, Any]:
    batch = json_answer(ref("Batch"))
    page = json_answer({
        "type": "object",
        "required": ["success", "batches", "total", "page", "limit", "has_more"],
        "properties": {
            "success": {"type": "boolean"},
            "batches": {"type": "array", "items": {"type": "object"}},
            "total": {"type": "integer"}, "page": {"type": "integer"},
            "limit": {"type": "integer"}, "has_more": {"type": "boolean"},
        },
    })  # fmt: skip
    pick_body = {"type": "object", "properties": {"generation_id": {"type": ["string", "null"]}}}
    create = op(
        "Submit a batch of takes (prompts × models × seeds, or count variations)",
        "createBatch", json_answer(ref("BatchCreated")),
        parameters=[{"name": HEADER, "in": "header", "description": idempotency,
                     "schema": {"type": "string", "maxLength": 255}}],
        requestBody={"required": True, "content": {JSON: {"schema": ref("BatchRequest")}}},
    )  # fmt: skip
    listing = op(
        "The team's batches, newest first", "listBatches", page,
        parameters=[query("page", type="integer", minimum=1),
                    query("limit", type="integer", minimum=1, maximum=api.MAX_PAGE_SIZE)],
    )  # fmt: skip
    return {
        "/api/v1/batches": {"post": create, "get": listing},
        "/api/v1/batches/{batch_id}": {"get": op(
            "A batch: counts per status and its items", "getBatch", batch,
            parameters=[BATCH_ID])},
        "/api/v1/batches/{batch_id}/cancel": {"post": op(
            "Cancel what has not finished (refunded)", "cancelBatch", batch,
            parameters=[BATCH_ID])},
        "/api/v1/batches/{batch_id}/pick": {"post": op(
            "Mark one take as the pick (null clears it)", "pickBatchItem", batch,
            parameters=[BATCH_ID],
            requestBody={"required": True, "content": {JSON: {"schema": pick_body}}})},
    }  # fmt: skip
