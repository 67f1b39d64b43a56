"""One OpenAPI 3.1 document for all three surfaces, served at /api/openapi.json, with
Swagger UI (vendored, no CDN) at /api/docs. Every enumeration, duration and limit is read from
where the API enforces it (the catalog, the request parser's constants, the handlers' named
values), so the schema and the validation cannot drift apart; tests/test_openapi.py checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from generations import catalog
from generations.api import framepack, idempotency, openai, videogenapi
from generations.api.common import public_url
from generations.api.openai import DEFAULT_SIZE, PRO_SIZES
from generations.api.openapi_batches import batch_paths, batch_schemas
from generations.api.openapi_parts import JSON
from generations.api.openapi_parts import errors as _errors
from generations.api.openapi_parts import json_answer as _json
from generations.api.openapi_parts import op as _op
from generations.api.openapi_parts import query as _query
from generations.api.openapi_parts import ref as _ref
from generations.api.openapi_shots import shot_paths, shot_schemas, verify_paths, video_operation
from generations.core.idempotency import KEEP_FOR, abandoned_after
from generations.core.validation import (
    MAX_PROMPT_CHARS,
    MAX_SCALE,
    MAX_SEED,
    MAX_STYLE_CHARS,
    MAX_URL_CHARS,
)
from generations.core.webhooks import MAX_URL_CHARS as MAX_WEBHOOK_URL_CHARS
from generations.routing import aliases, failover
from generations.vocabulary import Status

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
T = TypeVar("T")


def _idempotency() -> str:
    """Read per request: how long a try is presumed alive follows VIDEOGEN_FETCH_TIMEOUT."""
    kept_hours = int(KEEP_FOR.total_seconds() // 3600)
    presumed_dead_s = int(abandoned_after().total_seconds())
    return (
        f"Retrying with the same key (for {kept_hours} hours) returns the first answer, never a "
        "second generation: 409 while the first try is still being handled; the generation it "
        "saved if that try was cut off (its connection or server died); a fresh run once a try "
        f"that saved nothing is presumed dead ({presumed_dead_s} s). A 503 "
        "(`database_unavailable`, with Retry-After) is safe to retry with the same key."
    )


def _accepted(per_model: Callable[[catalog.ModelInfo], Iterable[T]]) -> list[T]:
    """What at least one model accepts, in the order the catalog first names it. A request
    must also suit its own model: that per-model rule is build_spec's, not the schema's."""
    return list(dict.fromkeys(v for m in catalog.MODELS for v in per_model(m)))


def _durations() -> list[int]:
    return sorted(_accepted(lambda m: m.durations))


def _max_frames() -> int:
    """build_spec takes up to the model's longest duration at its fps."""
    return max(m.max_duration * m.fps for m in catalog.MODELS)


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


def _video_sizes() -> list[str]:
    sizes = {f"{w}x{h}" for r in catalog.RESOLUTIONS for a in catalog.ALL_ASPECTS
             for w, h in [catalog.frame_size(r, a)]}  # fmt: skip
    return sorted(sizes | set(PRO_SIZES))


def schema(base_url: str) -> dict[str, Any]:
    fields = _generation_fields()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "videogen API",
            "version": "1",
            "description": "Three wire formats over one core: VideoGenAPI-compatible "
            "(/api/v1), Framepack-compatible (/v1/generate-video) and OpenAI-compatible "
            "(/v1/videos). Every API response carries X-RateLimit-* and RateLimit headers.",
        },
        "servers": [{"url": base_url}],
        "security": BEARER,
        "components": _components(fields),
        "paths": {**_videogenapi_paths(), **_framepack_paths(fields), **_openai_paths(fields)},
    }


# --- components -----------------------------------------------------------------------------


# A field has one set of bounds, the catalog one range per model: the field says the widest,
# the request's per-model `anyOf` branches (_per_model) and the models endpoint each model's own.
DURATION = (
    "Seconds. The bounds are the widest any model accepts; each model's own durations are "
    "`durations.allowed` in GET /api/v1/models."
)
NUM_FRAMES = (
    "Instead of (or with) `duration`. At most the model's longest duration times its `fps` "
    "(GET /api/v1/models); the maximum here is the largest over all models."
)


def _generation_fields() -> dict[str, Any]:
    """GenerateRequest's properties; the Framepack and OpenAI bodies reuse some of them."""
    durations = _durations()
    return {
        "model": {"type": "string", "enum": _model_keys(), "default": catalog.DEFAULT_MODEL},
        "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS},
        "negative_prompt": {"type": "string", "maxLength": MAX_PROMPT_CHARS},
        # No maxLength: the limit is for http(s) URLs only, a data: URL may be any size.
        "image_url": {"type": "string", "description": f"http(s) URL (at most {MAX_URL_CHARS} "
                      "characters) or data:image/... URL"},
        "end_image_url": {"type": "string", "description": "The last frame (models with the "
                          "`end-frame` capability): an image URL like `image_url`"},
        "duration": {"type": "integer", "minimum": durations[0], "maximum": durations[-1],
                     "description": DURATION},
        "num_frames": {"type": "integer", "minimum": 1, "maximum": _max_frames(),
                       "description": NUM_FRAMES},
        "resolution": {"type": "string", "enum": sorted(
            _accepted(lambda m: m.resolutions), key=catalog.RESOLUTIONS.index)},
        "aspect_ratio": {"type": "string", "enum": sorted(
            _accepted(lambda m: m.aspect_ratios), key=catalog.ALL_ASPECTS.index)},
        "seed": {"type": "integer", "minimum": -1, "maximum": MAX_SEED},
        "camera_fixed": {"type": "boolean"},
        "add_audio": {"type": "boolean"},
        "audio_prompt": {"type": "string", "maxLength": MAX_PROMPT_CHARS},
        "style": {"type": "string", "maxLength": MAX_STYLE_CHARS},
        "cfg_scale": {"type": "number", "minimum": 0, "maximum": MAX_SCALE},
        "guidance_scale": {"type": "number", "minimum": 0, "maximum": MAX_SCALE},
        "enable_safety_checker": {"type": "boolean", "default": True},
        "webhook_url": {"type": "string", "maxLength": MAX_WEBHOOK_URL_CHARS,
                        "description": "http(s) URL for this job's events"},
    }  # fmt: skip


def _per_model(default_model: str) -> list[dict[str, Any]]:
    """Each model's own durations and frame limit, one `anyOf` branch per model; the default
    model's branch also covers a request that names no model. Branches rather than if/then:
    no `not` for generators to satisfy. What a hosted provider narrows further (Sora served
    by OpenAI) is the server's to refuse, with a 400 naming the field."""
    branches = []
    for name in _model_keys():
        # An alias (VIDEOGEN_MODEL_ALIASES) takes what its target takes.
        m = catalog.get_model(aliases.resolve(name)[0])
        assert m is not None  # aliases point at catalog models
        contiguous = len(m.durations) == m.max_duration - m.min_duration + 1
        duration: dict[str, Any] = (
            {"minimum": m.min_duration, "maximum": m.max_duration}
            if contiguous
            else {"enum": list(m.durations)}
        )
        branch: dict[str, Any] = {
            "properties": {
                "model": {"const": name},
                "duration": duration,
                "num_frames": {"maximum": m.max_duration * m.fps},
            }
        }
        if name != default_model:
            branch["required"] = ["model"]
        branches.append(branch)
    return branches


def _model_keys() -> list[str]:
    """What a request may name: the catalog's keys and this server's aliases."""
    keys = [m.key for m in catalog.MODELS]
    return keys + [alias for alias in aliases.current().targets if alias not in keys]


def _components(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": _videogen_error(),
            "OpenAIError": _openai_error(),
            "Generation": _generation(),
            "Video": _video_object(),
            "FramepackAnswer": _framepack_answer(),
            **batch_schemas(fields),
            **shot_schemas(fields),
            "GenerateRequest": {
                "type": "object",
                "required": ["prompt"],
                "properties": fields,
                "anyOf": _per_model(catalog.DEFAULT_MODEL),
            },
        },
    }


def _generation() -> dict[str, Any]:
    model_summary = {
        "type": "object",
        "required": ["key", "name", "provider"],
        "properties": {k: {"type": "string"} for k in ("key", "name", "provider")},
    }
    return {
        "type": "object",
        "required": ["success", "generation_id", "request_id", "status", "type", "model",
                     "prompt", "duration", "resolution", "fps", "aspect_ratio", "seed",
                     "status_url"],
        "properties": {
            "success": {"type": "boolean"},
            "generation_id": {"type": "string"},
            "request_id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": [s.value for s in Status]},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "type": {"type": "string", "enum": _accepted(lambda m: m.modes)},
            "model": model_summary,
            "requested_model": {"type": "string", "description": "The alias the request "
                                "named (VIDEOGEN_MODEL_ALIASES) when it was one; `model` is "
                                "the model that serves it."},
            "prompt": {"type": "string"},
            "duration": {"type": "integer"},
            "resolution": {"type": "string"},
            "style": {"type": "string"},
            "fps": {"type": "integer"},
            "aspect_ratio": {"type": "string"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "seed": {"type": "integer"},
            "processing_time": _nullable("integer"),
            "phase": {"type": "string", "enum": ["audio"],
                      "description": "in_progress only: the video is done and its sound is "
                                     "being made (the audio step)."},
            "audio_source": {"type": "string",
                             "description": "Where the sound came from: `native` (the model's "
                                            "own), an audio route (e.g. `mirelo-sfx-v1.5`) or "
                                            "`procedural` (our sound bed)."},
            "provider": _provider(),
            "attempts": _attempts(),
            "cost": _cost(),
            "queue_position": {"type": "integer", "minimum": 0,
                               "description": "Jobs ahead of this one at a hosted provider "
                                              "that reports it (in_progress only)."},
            "completed_at": _nullable("string"),
            "status_url": {"type": "string"},
            "video_url": {"type": "string"},
            "thumbnail_url": {"type": "string"},
            "preview_url": {"type": "string"},
            "spritesheet_url": {"type": "string"},
            "files_expired": {"type": "boolean",
                              "description": "The retention policy deleted this video's files "
                                             "(its links answer 410); the record remains."},
            "files_expired_at": {"type": "string"},
            "end_image_url": {"type": "string"},
            "extended_from": {"type": ["string", "null"],
                              "description": "The generation this one extends."},
            "sequence_id": {"type": "string"},
            "shot_index": {"type": ["integer", "null"]},
            "error": {"type": "object", "properties": {"code": {"type": "string"},
                                                        "message": {"type": "string"}}},
            "test_mode": {"type": "boolean"},
        },
    }  # fmt: skip


def _videogen_error() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["success", "error"],
        "properties": {
            "success": {"const": False},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "field": {"type": "string"}},
            },
        },
    }  # fmt: skip


def _openai_error() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "code"],
                "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                               "param": _nullable("string"), "code": {"type": "string"}},
            }
        },
    }  # fmt: skip


def _video_object() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "object", "created_at", "status", "model", "progress", "seconds",
                     "size"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "video"},
            "created_at": {"type": "integer"},
            "completed_at": _nullable("integer"),
            "expires_at": _nullable("integer"),
            "status": {"type": "string", "enum": list(dict.fromkeys(openai.STATUS.values()))},
            "model": {"type": "string", "description": "The model that serves it."},
            "requested_model": {"type": "string", "description": "The alias the request "
                                "named, when it was one."},
            "progress": {"type": "integer"},
            "prompt": _nullable("string"),
            "seconds": {"type": "string"},
            "size": {"type": "string"},
            "remixed_from_video_id": _nullable("string"),
            "error": {"type": ["object", "null"]},
            "provider": _provider(),
            "attempts": _attempts(),
        },
    }  # fmt: skip


def _provider() -> dict[str, Any]:
    return {"type": ["string", "null"],
            "description": "The hosted provider serving the job (the one that served it, "
                           "once completed); null on an engine of this server's own."}  # fmt: skip


def _cost() -> dict[str, Any]:
    money = {"type": ["string", "null"], "pattern": r"^\d+\.\d{4}$"}
    return {
        "type": "object",
        "description": "US dollars at the provider: the estimate reserved at submit, and, once "
                       "completed, what it cost (`source`: `billed`, the provider's figure, or "
                       "`price_table`); $0 on engines of this server's own, and after a refund.",
        "required": ["estimated_usd", "usd", "source"],
        "properties": {
            "estimated_usd": money,
            "usd": money,
            "source": {"type": ["string", "null"], "enum": ["billed", "price_table", None]},
        },
    }  # fmt: skip


def _attempts() -> dict[str, Any]:
    outcomes = [failover.SERVED, failover.FAILED, failover.CANCELED, failover.FAILED_OVER,
                failover.SKIPPED_OPEN]  # fmt: skip
    attempt = {
        "type": "object",
        "required": ["provider", "outcome", "at", "detail"],
        "properties": {
            "provider": {"type": "string"},
            "outcome": {"type": "string", "enum": outcomes},
            "at": {"type": "string", "format": "date-time"},
            "detail": {"type": "string"},
        },
    }
    return {"type": "array", "items": attempt,
            "description": "Every hosted provider the job was on or passed over, in order: "
                           "`failed_over` (a transient failure; the next route took it), "
                           "`skipped_open` (its circuit breaker was open), then `served`, "
                           "`failed` or `canceled`."}  # fmt: skip


def _framepack_answer() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["request_id", "status", "model", "created"],
        "properties": {
            "request_id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": list(framepack.STATUSES)},
            "model": {"type": "string"},
            "requested_model": {"type": "string"},
            "created": {"type": "integer"},
            "video": {"type": "object", "properties": {"url": {"type": "string"}}},
            "error": {"type": "object"},
        },
    }  # fmt: skip


# --- VideoGenAPI paths (/api/v1) ------------------------------------------------------------

GENERATION_ID = {"name": "generation_id", "in": "path", "required": True,
                 "schema": {"type": "string"}}  # fmt: skip
VIDEO_ID = {"name": "video_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _videogenapi_paths() -> dict[str, Any]:
    return {
        "/api/v1/generate": {"post": _generate_operation()},
        "/api/v1/estimate": {"post": _estimate_operation()},
        **batch_paths(_idempotency()),
        **shot_paths(_idempotency()),
        **verify_paths(),
        **_generation_paths(),
        **_account_paths(),
        **_file_paths(),
    }


def _generate_operation() -> dict[str, Any]:
    return {
        "summary": "Submit a text-to-video or image-to-video generation",
        "operationId": "generate",
        "parameters": [{"name": "Idempotency-Key", "in": "header",
                        "description": _idempotency(),
                        "schema": {"type": "string", "maxLength": idempotency.MAX_KEY_CHARS}}],
        "requestBody": {"required": True,
                        "content": {JSON: {"schema": _ref("GenerateRequest")}}},
        "responses": {"200": _json(_ref("Generation")), **_errors("Error")},
    }  # fmt: skip


def _estimate_operation() -> dict[str, Any]:
    money = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}
    answer = {
        "type": "object",
        "required": ["success", "credits", "usd", "eta_s", "provider", "model"],
        "properties": {
            "success": {"type": "boolean"},
            "credits": {**money, "description": "Credits a team that pays in credits is charged"},
            "usd": {**money, "description": "US dollars at the provider (the price table's)"},
            "eta_s": {
                "type": "integer",
                "minimum": 1,
                "description": "Seconds until done: the queue ahead, then its run",
            },
            "provider": {
                **_nullable("string"),
                "description": "The engine or provider that would serve it",
            },
            "model": {"type": "string", "description": "The model that would serve it"},
            "priced": {"type": "boolean"},
            "queue_ahead": {"type": "integer", "minimum": 0},
            "budget": {
                "type": ["object", "null"],
                "properties": {
                    "monthly_budget_usd": money,
                    "spent_usd": money,
                    "within_budget": {"type": "boolean"},
                },
            },
            "test_mode": {"type": "boolean"},
        },
    }
    return {
        "summary": "What a generate request would cost and how long it would take "
                   "(nothing is created)",
        "operationId": "estimate",
        "requestBody": {"required": True,
                        "content": {JSON: {"schema": _ref("GenerateRequest")}}},
        "responses": {"200": _json(answer), **_errors("Error")},
    }  # fmt: skip


def _generation_paths() -> dict[str, Any]:
    """Status, cancel and the team's list."""
    generation = _json(_ref("Generation"))
    return {
        "/api/v1/status/{generation_id}": {"get": _op(
            "Status of a generation", "status", generation, parameters=[GENERATION_ID])},
        "/api/v1/generations/{generation_id}/cancel": {"post": _op(
            "Cancel a generation (refunded)", "cancel", generation, parameters=[GENERATION_ID])},
        "/api/v1/generations": {"get": _generations_operation()},
    }  # fmt: skip


def _generations_operation() -> dict[str, Any]:
    page = _json({
        "type": "object",
        "required": ["success", "generations", "total", "page", "limit", "has_more",
                     "next_cursor"],
        "properties": {
            "success": {"type": "boolean"},
            "generations": {"type": "array", "items": {"type": "object"}},
            "total": {"type": "integer"},
            "page": {"type": ["integer", "null"], "description": "null when paged by cursor"},
            "limit": {"type": "integer"}, "has_more": {"type": "boolean"},
            "next_cursor": {"type": ["string", "null"],
                            "description": "`cursor=` of the next page; null on the last"},
        },
    })  # fmt: skip
    return _op(
        "The team's generations, newest first", "generations", page,
        parameters=[
            _query("page", type="integer", minimum=1),
            _query("cursor", type="string"),
            _query("limit", type="integer", minimum=1, maximum=videogenapi.MAX_PAGE_SIZE),
        ],
    )  # fmt: skip


def _account_paths() -> dict[str, Any]:
    """The key's account, and the catalog."""
    user = _json({"type": "object", "required": ["success", "usage", "plan"]})
    models = _json(
        {
            "type": "object",
            "required": ["success", "models"],
            "properties": {
                "models": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "key": {"type": "string"},
                            "aliases": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": "Names (VIDEOGEN_MODEL_ALIASES) that this "
                                "model serves.",
                            },
                            "alias_of": {
                                "type": "string",
                                "description": "This key is an alias here: requests for it "
                                "are served by this model.",
                            },
                        },
                    },
                }
            },
        }
    )
    return {
        "/api/v1/user": {"get": _op("The key's user, team, plan, usage and credits", "user", user)},
        "/api/v1/models": {"get": _op("The model catalog and availability on this server",
                                      "models", models, security=[])},
    }  # fmt: skip


def _file_paths() -> dict[str, Any]:
    """The public files of a generation (no key: the id is the capability)."""
    picture = {
        "description": "The file (HTTP Range supported)",
        "content": {"image/jpeg": {}, "image/webp": {}},
    }
    public: dict[str, Any] = {"security": [], "parameters": [GENERATION_ID]}
    return {
        "/api/v1/video/{generation_id}": {"get": video_operation(
            "The MP4 of a generation or a sequence (public), or an export (`format`)")},
        **{
            f"/api/v1/{name}/{{generation_id}}": {"get": _op(summary, name, picture, **public)}
            for name, summary in (
                ("thumbnail", "The poster frame (public)"),
                ("preview", "A short animated WebP of the video (public)"),
                ("spritesheet", "A grid of evenly spaced thumbnails, for scrubbing (public)"),
            )
        },
    }  # fmt: skip


# --- Framepack path ---------------------------------------------------------------------------


def _framepack_paths(fields: dict[str, Any]) -> dict[str, Any]:
    body = {
        "type": "object",
        "properties": {
            **fields,
            "model": {"type": "string", "enum": _model_keys(), "default": framepack.DEFAULT_MODEL},
            "request_id": {"type": "string", "format": "uuid"},
            "wait_for_result": {"type": "boolean"},
        },
        "anyOf": _per_model(framepack.DEFAULT_MODEL),
    }
    return {
        "/v1/generate-video": {
            "post": {
                "summary": "Framepack-compatible: submit (generation fields) or poll "
                "(only request_id); wait_for_result holds up to "
                f"{settings.VIDEOGEN_WAIT_TIMEOUT:g} s, then 504",
                "operationId": "generateVideo",
                "requestBody": {"required": True, "content": {JSON: {"schema": body}}},
                "responses": {
                    "200": _json(_ref("FramepackAnswer")),
                    "504": _json({"type": "object", "required": ["request_id", "status"]},
                                 "Not finished within the wait limit; poll on"),
                    **_errors("Error"),
                },
            }
        }
    }  # fmt: skip


# --- OpenAI paths (/v1/videos) ----------------------------------------------------------------


def _openai_paths(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "/v1/videos": {"post": _create_video(fields), "get": _list_videos()},
        "/v1/videos/{video_id}": {"get": _retrieve_video(), "delete": _delete_video()},
        "/v1/videos/{video_id}/content": {"get": _download_video_content()},
        "/v1/videos/{video_id}/remix": {"post": _remix_video(fields)},
    }


def _create_video(fields: dict[str, Any]) -> dict[str, Any]:
    seconds = [str(s) for s in _durations()]
    return {
        "summary": "OpenAI-compatible: create a video (JSON or multipart)",
        "operationId": "createVideo",
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": {
                    "type": "object", "required": ["prompt"],
                    "properties": {
                        "prompt": fields["prompt"],
                        "model": {"type": "string", "enum": _model_keys()},
                        "seconds": {"type": "string", "enum": seconds},
                        "size": {"type": "string", "enum": _video_sizes(),
                                 "default": DEFAULT_SIZE},
                        "input_reference": {"type": "object", "properties": {
                            "image_url": {"type": "string"}}},
                    },
                }},
                "multipart/form-data": {"schema": {
                    "type": "object", "required": ["prompt"],
                    "properties": {
                        "prompt": {"type": "string"}, "model": {"type": "string"},
                        "seconds": {"type": "string"}, "size": {"type": "string"},
                        "input_reference": {"type": "string", "format": "binary"},
                    },
                }},
            },
        },
        "responses": {"200": _json(_ref("Video")), **_errors("OpenAIError")},
    }  # fmt: skip


def _list_videos() -> dict[str, Any]:
    page = _json({
        "type": "object", "required": ["object", "data", "has_more"],
        "properties": {"object": {"const": "list"},
                       "data": {"type": "array", "items": _ref("Video")},
                       "first_id": _nullable("string"),
                       "last_id": _nullable("string"),
                       "has_more": {"type": "boolean"}},
    })  # fmt: skip
    return _op(
        "OpenAI-compatible: list videos", "listVideos", page, "OpenAIError",
        parameters=[
            _query("after", type="string"),
            _query("limit", type="integer", minimum=1, maximum=openai.MAX_LIST_LIMIT),
            _query("order", type="string", enum=["asc", "desc"]),
        ],
    )  # fmt: skip


def _retrieve_video() -> dict[str, Any]:
    return {
        "summary": "OpenAI-compatible: retrieve a video",
        "operationId": "retrieveVideo",
        "parameters": [VIDEO_ID],
        "responses": {"200": _json(_ref("Video")), **_errors("OpenAIError")},
    }


def _delete_video() -> dict[str, Any]:
    return {
        "summary": "OpenAI-compatible: delete a video (canceled and refunded first "
        "if it is still running)",
        "operationId": "deleteVideo",
        "parameters": [VIDEO_ID],
        "responses": {
            "200": _json({"type": "object", "required": ["id", "object", "deleted"],
                          "properties": {"object": {"const": "video.deleted"},
                                         "deleted": {"type": "boolean"}}}),
            **_errors("OpenAIError"),
        },
    }  # fmt: skip


def _download_video_content() -> dict[str, Any]:
    return {
        "summary": "OpenAI-compatible: download the video, thumbnail or spritesheet",
        "operationId": "downloadVideoContent",
        "parameters": [
            VIDEO_ID,
            {"name": "variant", "in": "query", "schema": {
                "type": "string", "enum": ["video", "thumbnail", "spritesheet"]}},
        ],
        "responses": {
            "200": {"description": "The file", "content": {
                "video/mp4": {}, "image/jpeg": {}, "image/webp": {}}},
            **_errors("OpenAIError"),
        },
    }  # fmt: skip


def _remix_video(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": "OpenAI-compatible: a new video from the original's parameters "
        "with a new prompt",
        "operationId": "remixVideo",
        "parameters": [VIDEO_ID],
        "requestBody": {"required": True, "content": {JSON: {"schema": {
            "type": "object", "required": ["prompt"],
            "properties": {"prompt": fields["prompt"]}}}}},
        "responses": {"200": _json(_ref("Video")), **_errors("OpenAIError")},
    }  # fmt: skip


@require_GET
def openapi_json(request: HttpRequest) -> HttpResponse:
    return JsonResponse(schema(public_url(request, "")), json_dumps_params={"indent": 1})


@require_GET
def api_docs(request: HttpRequest) -> HttpResponse:
    return render(request, "api_docs.html")
