"""One OpenAPI 3.1 document for all three surfaces, served at /api/openapi.json, with
Swagger UI (vendored, no CDN) at /api/docs. Enumerations come from the catalog, so the schema
and the validation cannot drift apart."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from generations import catalog, vocabulary
from generations.api.openai import DEFAULT_SIZE, PRO_SIZES
from generations.core.validation import MAX_PROMPT_CHARS, MAX_SCALE, MAX_SEED

JSON = "application/json"


IDEMPOTENCY = (
    "Retrying with the same key (for 24 hours) returns the first answer, never a second "
    "generation: 409 while the first try is still being handled; the generation it saved if "
    "that try was cut off (its connection or server died); a fresh run once a try that saved "
    "nothing is presumed dead (60 s). A 503 (`database_unavailable`, with Retry-After) is safe "
    "to retry with the same key."
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(schema: str) -> dict[str, Any]:
    return {"default": _json(_ref(schema), "An error, naming the field where one is to blame")}


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


def _video_sizes() -> list[str]:
    sizes = {f"{w}x{h}" for r in catalog.RESOLUTIONS for a in catalog.ALL_ASPECTS
             for w, h in [catalog.frame_size(r, a)]}  # fmt: skip
    return sorted(sizes | set(PRO_SIZES))


def schema(base_url: str) -> dict[str, Any]:
    models = [m.key for m in catalog.MODELS]
    seconds = [str(s) for s in range(1, 61)]
    generation_fields: dict[str, Any] = {
        "model": {"type": "string", "enum": models, "default": catalog.DEFAULT_MODEL},
        "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS},
        "negative_prompt": {"type": "string", "maxLength": MAX_PROMPT_CHARS},
        "image_url": {"type": "string", "description": "http(s) or data:image/... URL"},
        "duration": {"type": "integer", "minimum": 1, "maximum": 60},
        "num_frames": {"type": "integer", "minimum": 1},
        "resolution": {"type": "string", "enum": list(catalog.RESOLUTIONS)},
        "aspect_ratio": {"type": "string", "enum": list(catalog.ALL_ASPECTS)},
        "seed": {"type": "integer", "minimum": -1, "maximum": MAX_SEED},
        "camera_fixed": {"type": "boolean"},
        "add_audio": {"type": "boolean"},
        "audio_prompt": {"type": "string", "maxLength": MAX_PROMPT_CHARS},
        "style": {"type": "string", "maxLength": 40},
        "cfg_scale": {"type": "number", "minimum": 0, "maximum": MAX_SCALE},
        "guidance_scale": {"type": "number", "minimum": 0, "maximum": MAX_SCALE},
        "enable_safety_checker": {"type": "boolean", "default": True},
        "webhook_url": {"type": "string", "description": "http(s) URL for this job's events"},
    }
    model_summary = {
        "type": "object",
        "required": ["key", "name", "provider"],
        "properties": {k: {"type": "string"} for k in ("key", "name", "provider")},
    }
    generation = {
        "type": "object",
        "required": ["success", "generation_id", "request_id", "status", "type", "model",
                     "prompt", "duration", "resolution", "fps", "aspect_ratio", "seed",
                     "status_url"],
        "properties": {
            "success": {"type": "boolean"},
            "generation_id": {"type": "string"},
            "request_id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["pending", "in_queue", "in_progress",
                                                   "completed", "failed", "canceled"]},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "type": {"type": "string", "enum": [vocabulary.T2V, vocabulary.I2V]},
            "model": model_summary,
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
            "error": {"type": "object", "properties": {"code": {"type": "string"},
                                                        "message": {"type": "string"}}},
            "test_mode": {"type": "boolean"},
        },
    }  # fmt: skip
    videogen_error = {
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
    openai_error = {
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
    video_object = {
        "type": "object",
        "required": ["id", "object", "created_at", "status", "model", "progress", "seconds",
                     "size"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "video"},
            "created_at": {"type": "integer"},
            "completed_at": _nullable("integer"),
            "expires_at": _nullable("integer"),
            "status": {"type": "string", "enum": ["queued", "in_progress", "completed", "failed"]},
            "model": {"type": "string"},
            "progress": {"type": "integer"},
            "prompt": _nullable("string"),
            "seconds": {"type": "string"},
            "size": {"type": "string"},
            "remixed_from_video_id": _nullable("string"),
            "error": {"type": ["object", "null"]},
        },
    }  # fmt: skip
    framepack_answer = {
        "type": "object",
        "required": ["request_id", "status", "model", "created"],
        "properties": {
            "request_id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["pending", "success", "complete", "failed"]},
            "model": {"type": "string"},
            "created": {"type": "integer"},
            "video": {"type": "object", "properties": {"url": {"type": "string"}}},
            "error": {"type": "object"},
        },
    }  # fmt: skip
    generation_id = {"name": "generation_id", "in": "path", "required": True,
                     "schema": {"type": "string"}}  # fmt: skip
    video_id = {"name": "video_id", "in": "path", "required": True, "schema": {"type": "string"}}
    public_file = {
        "responses": {
            "200": {"description": "The file (HTTP Range supported)",
                    "content": {"image/jpeg": {}, "image/webp": {}}},
            **_errors("Error"),
        },
        "security": [],
        "parameters": [generation_id],
    }  # fmt: skip
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
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
        "security": bearer,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": videogen_error,
                "OpenAIError": openai_error,
                "Generation": generation,
                "Video": video_object,
                "FramepackAnswer": framepack_answer,
                "GenerateRequest": {"type": "object", "required": ["prompt"],
                                    "properties": generation_fields},
            },
        },  # fmt: skip
        "paths": {
            "/api/v1/generate": {
                "post": {
                    "summary": "Submit a text-to-video or image-to-video generation",
                    "operationId": "generate",
                    "parameters": [{"name": "Idempotency-Key", "in": "header",
                                    "description": IDEMPOTENCY,
                                    "schema": {"type": "string", "maxLength": 255}}],
                    "requestBody": {"required": True,
                                    "content": {JSON: {"schema": _ref("GenerateRequest")}}},
                    "responses": {"200": _json(_ref("Generation")), **_errors("Error")},
                }
            },
            "/api/v1/status/{generation_id}": {
                "get": {
                    "summary": "Status of a generation",
                    "operationId": "status",
                    "parameters": [generation_id],
                    "responses": {"200": _json(_ref("Generation")), **_errors("Error")},
                }
            },
            "/api/v1/generations/{generation_id}/cancel": {
                "post": {
                    "summary": "Cancel a generation (refunded)",
                    "operationId": "cancel",
                    "parameters": [generation_id],
                    "responses": {"200": _json(_ref("Generation")), **_errors("Error")},
                }
            },
            "/api/v1/generations": {
                "get": {
                    "summary": "The team's generations, newest first",
                    "operationId": "generations",
                    "parameters": [
                        {"name": "page", "in": "query",
                         "schema": {"type": "integer", "minimum": 1}},
                        {"name": "limit", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                    ],
                    "responses": {
                        "200": _json({
                            "type": "object",
                            "required": ["success", "generations", "total", "page", "limit",
                                         "has_more"],
                            "properties": {
                                "success": {"type": "boolean"},
                                "generations": {"type": "array", "items": {"type": "object"}},
                                "total": {"type": "integer"}, "page": {"type": "integer"},
                                "limit": {"type": "integer"}, "has_more": {"type": "boolean"},
                            },
                        }),
                        **_errors("Error"),
                    },
                }
            },
            "/api/v1/user": {
                "get": {
                    "summary": "The key's user, team, plan, usage and credits",
                    "operationId": "user",
                    "responses": {
                        "200": _json({"type": "object", "required": ["success", "usage", "plan"]}),
                        **_errors("Error"),
                    },
                }
            },
            "/api/v1/models": {
                "get": {
                    "summary": "The model catalog and availability on this server",
                    "operationId": "models",
                    "security": [],
                    "responses": {
                        "200": _json({"type": "object", "required": ["success", "models"],
                                      "properties": {"models": {"type": "array"}}}),
                        **_errors("Error"),
                    },
                }
            },
            "/api/v1/video/{generation_id}": {
                "get": {
                    "summary": "The MP4 (public, HTTP Range supported)",
                    "operationId": "video",
                    "security": [],
                    "parameters": [generation_id],
                    "responses": {
                        "200": {"description": "The video", "content": {"video/mp4": {}}},
                        **_errors("Error"),
                    },
                }
            },
            "/api/v1/thumbnail/{generation_id}": {
                "get": {**public_file, "operationId": "thumbnail"}
            },
            "/api/v1/preview/{generation_id}": {"get": {**public_file, "operationId": "preview"}},
            "/api/v1/spritesheet/{generation_id}": {
                "get": {**public_file, "operationId": "spritesheet"}
            },
            "/v1/generate-video": {
                "post": {
                    "summary": "Framepack-compatible: submit (generation fields) or poll "
                    "(only request_id); wait_for_result holds up to 60 s, then 504",
                    "operationId": "generateVideo",
                    "requestBody": {
                        "required": True,
                        "content": {JSON: {"schema": {
                            "type": "object",
                            "properties": {
                                **generation_fields,
                                "model": {"type": "string", "enum": models, "default": "framepack"},
                                "request_id": {"type": "string", "format": "uuid"},
                                "wait_for_result": {"type": "boolean"},
                            },
                        }}},
                    },
                    "responses": {
                        "200": _json(_ref("FramepackAnswer")),
                        "504": _json({"type": "object", "required": ["request_id", "status"]},
                                     "Not finished within the wait limit; poll on"),
                        **_errors("Error"),
                    },
                }
            },
            "/v1/videos": {
                "post": {
                    "summary": "OpenAI-compatible: create a video (JSON or multipart)",
                    "operationId": "createVideo",
                    "requestBody": {
                        "required": True,
                        "content": {
                            JSON: {"schema": {
                                "type": "object", "required": ["prompt"],
                                "properties": {
                                    "prompt": generation_fields["prompt"],
                                    "model": {"type": "string", "enum": models},
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
                },
                "get": {
                    "summary": "OpenAI-compatible: list videos",
                    "operationId": "listVideos",
                    "parameters": [
                        {"name": "after", "in": "query", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                        {"name": "order", "in": "query",
                         "schema": {"type": "string", "enum": ["asc", "desc"]}},
                    ],
                    "responses": {
                        "200": _json({
                            "type": "object", "required": ["object", "data", "has_more"],
                            "properties": {"object": {"const": "list"},
                                           "data": {"type": "array", "items": _ref("Video")},
                                           "first_id": _nullable("string"),
                                           "last_id": _nullable("string"),
                                           "has_more": {"type": "boolean"}},
                        }),
                        **_errors("OpenAIError"),
                    },
                },
            },
            "/v1/videos/{video_id}": {
                "get": {
                    "summary": "OpenAI-compatible: retrieve a video",
                    "operationId": "retrieveVideo",
                    "parameters": [video_id],
                    "responses": {"200": _json(_ref("Video")), **_errors("OpenAIError")},
                },
                "delete": {
                    "summary": "OpenAI-compatible: delete a video (canceled and refunded first "
                    "if it is still running)",
                    "operationId": "deleteVideo",
                    "parameters": [video_id],
                    "responses": {
                        "200": _json({"type": "object", "required": ["id", "object", "deleted"],
                                      "properties": {"object": {"const": "video.deleted"},
                                                     "deleted": {"type": "boolean"}}}),
                        **_errors("OpenAIError"),
                    },
                },
            },
            "/v1/videos/{video_id}/content": {
                "get": {
                    "summary": "OpenAI-compatible: download the video, thumbnail or spritesheet",
                    "operationId": "downloadVideoContent",
                    "parameters": [
                        video_id,
                        {"name": "variant", "in": "query", "schema": {
                            "type": "string", "enum": ["video", "thumbnail", "spritesheet"]}},
                    ],
                    "responses": {
                        "200": {"description": "The file", "content": {
                            "video/mp4": {}, "image/jpeg": {}, "image/webp": {}}},
                        **_errors("OpenAIError"),
                    },
                }
            },
            "/v1/videos/{video_id}/remix": {
                "post": {
                    "summary": "OpenAI-compatible: a new video from the original's parameters "
                    "with a new prompt",
                    "operationId": "remixVideo",
                    "parameters": [video_id],
                    "requestBody": {"required": True, "content": {JSON: {"schema": {
                        "type": "object", "required": ["prompt"],
                        "properties": {"prompt": generation_fields["prompt"]}}}}},
                    "responses": {"200": _json(_ref("Video")), **_errors("OpenAIError")},
                }
            },
        },
    }  # fmt: skip


@require_GET
def openapi_json(request: HttpRequest) -> HttpResponse:
    from generations.api.common import public_url

    return JsonResponse(schema(public_url(request, "")), json_dumps_params={"indent": 1})


@require_GET
def api_docs(request: HttpRequest) -> HttpResponse:
    return render(request, "api_docs.html")
