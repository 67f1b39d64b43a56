"""The shots endpoints' part of the OpenAPI document (api/extend.py, api/sequences.py,
CONTRACT 6). Limits are read from core/sequences.py, where they are enforced."""

from __future__ import annotations

from typing import Any

from generations.api.openapi_parts import JSON, json_answer, op, ref
from generations.core import exports, sequences
from generations.core.idempotency import HEADER
from generations.core.validation import MAX_PROMPT_CHARS, MAX_SEED
from generations.vocabulary import Status

SEQUENCE_ID = {"name": "sequence_id", "in": "path", "required": True, "schema": {"type": "string"}}
GENERATION_ID = {"name": "generation_id", "in": "path", "required": True,
                 "schema": {"type": "string"}}  # fmt: skip
FORMAT = {
    "name": "format", "in": "query", "required": False,
    "schema": {"type": "string", "enum": list(exports.FORMATS)},
    "description": "An export instead of the MP4: `gif` (palette-optimised, bounded size), "
    "`webm` (VP9) or `loop` (a seamless loop, MP4). Made on first request: 202 with "
    "Retry-After until it is ready.",
}  # fmt: skip


def shot_schemas(fields: dict[str, Any]) -> dict[str, Any]:
    shot = {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS},
            "duration": fields["duration"],
            "image_url": fields["image_url"],
            "seed": {"type": "integer", "minimum": -1, "maximum": MAX_SEED},
            "negative_prompt": {"type": "string", "maxLength": MAX_PROMPT_CHARS},
            "camera_fixed": {"type": "boolean"},
        },
    }
    common = {name: fields[name] for name in sequences.COMMON_FIELDS if name in fields}
    shot_state = {
        "type": "object",
        "properties": {
            "index": {"type": "integer"}, "generation_id": {"type": "string"},
            "prompt": {"type": "string"}, "duration": {"type": "integer"},
            "status": {"type": "string", "enum": [s.value for s in Status]},
            "progress": {"type": "integer"}, "start": {"type": "number"},
        },
    }  # fmt: skip
    return {
        "ExtendRequest": {
            "type": "object",
            "required": ["duration"],
            "properties": {
                "duration": {**fields["duration"], "description": "Seconds to add."},
                "prompt": {
                    "type": "string",
                    "maxLength": MAX_PROMPT_CHARS,
                    "description": "The source's prompt by default.",
                },
                "seed": {"type": "integer", "minimum": -1, "maximum": MAX_SEED},
                "webhook_url": {"type": "string"},
            },
        },  # fmt: skip
        "SequenceRequest": {
            "type": "object",
            "required": ["shots"],
            "description": f"{sequences.MIN_SHOTS} to {sequences.MAX_SHOTS} shots, at most "
            f"{sequences.MAX_TOTAL_S} s in all; each shot is charged as a generation.",
            "properties": {
                **common,
                "transition": {
                    "type": "string",
                    "enum": list(sequences.TRANSITIONS),
                    "default": "cut",
                },
                "title": {"type": "string", "maxLength": 200},
                "shots": {
                    "type": "array",
                    "minItems": sequences.MIN_SHOTS,
                    "maxItems": sequences.MAX_SHOTS,
                    "items": shot,
                },
            },
        },  # fmt: skip
        "SequenceCreated": {
            "type": "object",
            "required": ["success", "sequence_id", "generations", "status_url"],
            "properties": {
                "success": {"type": "boolean"},
                "sequence_id": {"type": "string"},
                "generations": {"type": "array", "items": {"type": "string"}},
                "status_url": {"type": "string"},
                "duration": {"type": "number"},
                "usage": {"type": "object"},
                "test_mode": {"type": "boolean"},
            },
        },  # fmt: skip
        "Sequence": {
            "type": "object",
            "required": ["success", "sequence_id", "status", "progress", "shots"],
            "properties": {
                "success": {"type": "boolean"},
                "sequence_id": {"type": "string"},
                "status": {"type": "string", "enum": [s.value for s in Status]},
                "progress": {"type": "integer", "minimum": 0, "maximum": 100},
                "model": {"type": "string"},
                "resolution": {"type": "string"},
                "aspect_ratio": {"type": "string"},
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "fps": {"type": "integer"},
                "transition": {"type": "string"},
                "created_at": {"type": ["string", "null"]},
                "completed_at": {"type": ["string", "null"]},
                "status_url": {"type": "string"},
                "duration": {"type": "number"},
                "frames": {"type": "integer"},
                "video_url": {"type": "string"},
                "thumbnail_url": {"type": "string"},
                "preview_url": {"type": "string"},
                "markers": {"type": "array", "items": {"type": "number"}},
                "shots": {"type": "array", "items": shot_state},
                "error": {"type": "object"},
                "test_mode": {"type": "boolean"},
            },
        },  # fmt: skip
    }


def shot_paths(idempotency: str) -> dict[str, Any]:
    seq = json_answer(ref("Sequence"))
    listing = json_answer({"type": "object", "properties": {
        "success": {"type": "boolean"}, "sequences": {"type": "array", "items": {"type": "object"}},
    }})  # fmt: skip
    return {
        "/api/v1/generations/{generation_id}/extend": {"post": op(
            "Extend a completed generation by `duration` seconds (a new generation)", "extend",
            json_answer(ref("Generation")),
            parameters=[GENERATION_ID, {"name": HEADER, "in": "header",
                                        "description": idempotency,
                                        "schema": {"type": "string", "maxLength": 255}}],
            requestBody={"required": True, "content": {JSON: {"schema": ref("ExtendRequest")}}},
        )},
        "/api/v1/sequences": {
            "post": op("Submit a sequence of shots, stitched into one video", "createSequence",
                       json_answer(ref("SequenceCreated")),
                       requestBody={"required": True,
                                    "content": {JSON: {"schema": ref("SequenceRequest")}}}),
            "get": op("The team's sequences, newest first", "listSequences", listing),
        },
        "/api/v1/sequences/{sequence_id}": {"get": op(
            "A sequence: status, progress, shots, and the stitched video", "getSequence", seq,
            parameters=[SEQUENCE_ID])},
        "/api/v1/sequences/{sequence_id}/cancel": {"post": op(
            "Cancel what has not finished (refunded)", "cancelSequence", seq,
            parameters=[SEQUENCE_ID])},
    }  # fmt: skip


def video_operation(summary: str) -> dict[str, Any]:
    """GET /api/v1/video/{id}: the MP4 (a generation's or a sequence's), or an export."""
    files = {"description": "The file (HTTP Range supported)",
             "content": {"video/mp4": {}, "image/gif": {}, "video/webm": {}}}  # fmt: skip
    pending = json_answer({"type": "object", "properties": {
        "success": {"type": "boolean"}, "status": {"type": "string"},
        "format": {"type": "string"}, "message": {"type": "string"},
    }}, "The export is being made: ask again after Retry-After seconds")  # fmt: skip
    answer = op(summary, "video", files, security=[], parameters=[GENERATION_ID, FORMAT])
    answer["responses"]["202"] = pending
    return answer


def verify_paths() -> dict[str, Any]:
    """POST /api/v1/verify (CONTRACT 8): no key needed; with one, the generation's id."""
    answer = json_answer({
        "type": "object",
        "required": ["success", "c2pa", "watermark"],
        "properties": {
            "success": {"type": "boolean"},
            "c2pa": {"type": "object", "properties": {
                "present": {"type": "boolean"}, "valid": {"type": "boolean"},
                "trusted": {"type": "boolean"}, "generator": {"type": ["string", "null"]},
                "digital_source_type": {"type": ["string", "null"]},
                "model": {"type": ["string", "null"]},
                "ingredients": {"type": "array", "items": {"type": "string"}},
                "codes": {"type": "array", "items": {"type": "string"}},
            }},
            "watermark": {"type": "object", "properties": {
                "found": {"type": "boolean"}, "ours": {"type": "boolean"},
                "generation_id": {"type": ["string", "null"]},
            }},
        },
    })  # fmt: skip
    upload = {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}},
    }}}  # fmt: skip
    return {
        "/api/v1/verify": {"post": op(
            "Is this video AI-made, and ours? Its C2PA manifest and our watermark", "verify",
            answer, security=[{}, {"bearer": []}],
            requestBody={"required": True, "content": upload},
        )},
    }  # fmt: skip
