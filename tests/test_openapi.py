"""The published OpenAPI schema, and a bounded schemathesis run over every operation:
no 5xx, and every response conforms to the schema (status, content type, body)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.test import RequestFactory

from generations import catalog, vocabulary
from generations.api import framepack, idempotency, openai, videogenapi
from generations.api.openapi import schema
from generations.core import validation, webhooks
from generations.models import Generation
from tests.asgi_client import AsgiClient
from tests.conftest import Account
from videogen_site.asgi import application

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a test dependency")
# jsonschema_rs: schemathesis's own validator, so it is here wherever schemathesis is.
import jsonschema_rs  # noqa: E402
from hypothesis import HealthCheck, given  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402

# Bounded: a few examples per operation keep `make test` fast; `make fuzz` runs many more.
EXAMPLES = int(os.environ.get("VIDEOGEN_FUZZ_EXAMPLES", "10"))
# What the issue asks for: no 5xx, and responses that match the schema. Schema-valid requests
# may still be refused (400) for rules a schema cannot say (a model's own limits).


def not_a_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, except the one the contract prescribes: a Framepack `wait_for_result` that
    outlasts VIDEOGEN_WAIT_TIMEOUT answers 504 with the request_id to poll (no worker runs
    here, so every such wait times out)."""
    if (
        response.status_code == 504
        and case.path == "/v1/generate-video"
        and response.json().get("error", {}).get("code") == "timeout"
        and response.json().get("request_id")
    ):
        return None
    result: bool | None = schemathesis.checks.not_a_server_error(ctx, response, case)
    return result


CHECKS = [
    not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


def test_the_schema_is_served_and_describes_all_three_surfaces(db: None) -> None:
    body = AsgiClient().get("/api/openapi.json").json()
    assert body["openapi"].startswith("3.1")
    paths = set(body["paths"])
    assert {"/api/v1/generate", "/v1/generate-video", "/v1/videos",
            "/v1/videos/{video_id}/content"} <= paths  # fmt: skip
    models = body["components"]["schemas"]["GenerateRequest"]["properties"]["model"]["enum"]
    assert "local" in models and "sora-2" in models


def test_the_interactive_docs_load_without_a_cdn(db: None) -> None:
    html = AsgiClient().get("/api/docs").content.decode()
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html and "https://" not in html


def test_no_operation_fails_or_breaks_its_schema(owner: Account, settings: Any) -> None:
    settings.VIDEOGEN_FETCH_TIMEOUT = 1  # generated image URLs point nowhere: fail fast
    settings.VIDEOGEN_WAIT_TIMEOUT = 0.2
    api = schemathesis.openapi.from_asgi("/api/openapi.json", application)
    headers = {"Authorization": f"Bearer {owner.raw_key}"}
    checked = []
    for result in api.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES, deadline=None, database=None,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
        checked.append(operation.label)
    assert len(checked) >= 15


# --- drift: the schema states the limits the catalog and the parser enforce -----------------


def _schemas() -> dict[str, Any]:
    components: dict[str, Any] = schema("http://testserver")["components"]["schemas"]
    return components


def _operation(path: str, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = schema("http://testserver")["paths"][path][method]
    return operation


def _query_limit(path: str, method: str) -> Any:
    (limit,) = (p for p in _operation(path, method)["parameters"] if p["name"] == "limit")
    return limit["schema"]["maximum"]


def test_durations_and_choices_are_the_catalogs() -> None:
    fields = _schemas()["GenerateRequest"]["properties"]
    models = catalog.MODELS
    assert fields["duration"]["minimum"] == min(m.min_duration for m in models)
    assert fields["duration"]["maximum"] == max(m.max_duration for m in models)
    assert fields["num_frames"]["maximum"] == max(m.max_duration * m.fps for m in models)
    body = _operation("/v1/videos", "post")["requestBody"]["content"]["application/json"]
    seconds = body["schema"]["properties"]["seconds"]["enum"]
    assert sorted(seconds, key=int) == sorted(
        {str(d) for m in models for d in m.durations}, key=int
    )
    assert set(fields["resolution"]["enum"]) == {r for m in models for r in m.resolutions}
    assert set(fields["aspect_ratio"]["enum"]) == {a for m in models for a in m.aspect_ratios}
    assert set(_schemas()["Generation"]["properties"]["type"]["enum"]) == {
        mode for m in models for mode in m.modes
    }
    assert fields["model"]["enum"] == [m.key for m in models]


def test_length_and_number_limits_are_the_parsers() -> None:
    fields = _schemas()["GenerateRequest"]["properties"]
    for name in ("prompt", "negative_prompt", "audio_prompt"):
        assert fields[name]["maxLength"] == validation.MAX_PROMPT_CHARS, name
    assert fields["style"]["maxLength"] == validation.MAX_STYLE_CHARS
    assert f"at most {validation.MAX_URL_CHARS} characters" in fields["image_url"]["description"]
    assert fields["webhook_url"]["maxLength"] == webhooks.MAX_URL_CHARS
    assert fields["seed"]["maximum"] == validation.MAX_SEED
    assert (
        fields["cfg_scale"]["maximum"]
        == fields["guidance_scale"]["maximum"]
        == validation.MAX_SCALE
    )
    (key,) = _operation("/api/v1/generate", "post")["parameters"]
    assert key["schema"]["maxLength"] == idempotency.MAX_KEY_CHARS
    assert _query_limit("/api/v1/generations", "get") == videogenapi.MAX_PAGE_SIZE
    assert _query_limit("/v1/videos", "get") == openai.MAX_LIST_LIMIT


def test_every_status_a_surface_can_answer_is_in_its_enum() -> None:
    """Rendered by the surfaces' own functions for every lifecycle status, so a status word
    added to a handler but not to the schema fails here, not only when a fuzz run meets it."""
    schemas = _schemas()
    assert schemas["Generation"]["properties"]["status"]["enum"] == [
        s.value for s in vocabulary.Status
    ]
    video_statuses = set(schemas["Video"]["properties"]["status"]["enum"])
    framepack_statuses = set(schemas["FramepackAnswer"]["properties"]["status"]["enum"])
    request = RequestFactory().get("/")
    for status in Generation.Status:
        gen = Generation(status=status, model="local", duration=1, width=2, height=2)
        assert openai.video_object(gen)["status"] in video_statuses, status
        for waited in (False, True):
            answer = framepack.framepack_body(request, gen, waited=waited)
            assert answer["status"] in framepack_statuses, (status, waited)


def test_each_models_own_durations_are_in_the_request_schemas() -> None:
    """A duration validates exactly when the named model takes it, and a request that names
    no model is held to the surface's default model."""
    framepack_body = _operation("/v1/generate-video", "post")["requestBody"]["content"]
    surfaces = {
        catalog.DEFAULT_MODEL: _schemas()["GenerateRequest"],
        framepack.DEFAULT_MODEL: framepack_body["application/json"]["schema"],
    }
    longest = max(m.max_duration for m in catalog.MODELS)
    for default, request_schema in surfaces.items():
        valid = jsonschema_rs.Draft202012Validator(request_schema).is_valid
        for m in catalog.MODELS:
            named = {"prompt": "x", "model": m.key}
            for d in range(longest + 2):
                assert valid({**named, "duration": d}) == (d in m.durations), (m.key, d)
            frames = m.max_duration * m.fps
            assert valid({**named, "num_frames": frames}), m.key
            assert not valid({**named, "num_frames": frames + 1}), m.key
        own = catalog.get_model(default)
        assert own is not None
        for d in range(longest + 2):
            assert valid({"prompt": "x", "duration": d}) == (d in own.durations), (default, d)


def _widest(maximum: int, reach: Any) -> catalog.ModelInfo:
    """A text-to-video model whose own limit is the schema's maximum (test keys run any)."""
    found = [m for m in catalog.MODELS if vocabulary.T2V in m.modes and reach(m) == maximum]
    assert found, f"no text-to-video model reaches the schema's maximum {maximum}"
    return found[0]


@pytest.mark.parametrize("name", ["duration", "num_frames", "prompt", "style"])
def test_the_schemas_maximum_is_accepted_and_one_more_is_refused(
    tester: Account, name: str
) -> None:
    field = _schemas()["GenerateRequest"]["properties"][name]
    body: dict[str, Any] = {"prompt": "a lighthouse at dusk"}
    if name == "duration":
        body["model"] = _widest(field["maximum"], lambda m: m.max_duration).key
    elif name == "num_frames":
        body["model"] = _widest(field["maximum"], lambda m: m.max_duration * m.fps).key

    def value(size: int) -> int | str:
        return size if field["type"] == "integer" else "x" * size

    top = field.get("maximum", field.get("maxLength"))
    accepted = tester.client().post("/api/v1/generate", {**body, name: value(top)})
    assert accepted.status_code == 200, accepted.content
    refused = tester.client().post("/api/v1/generate", {**body, name: value(top + 1)})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == name


def test_openais_longest_seconds_is_accepted_and_one_more_is_refused(tester: Account) -> None:
    body = _operation("/v1/videos", "post")["requestBody"]["content"]["application/json"]
    longest = max(int(s) for s in body["schema"]["properties"]["seconds"]["enum"])
    model = _widest(longest, lambda m: m.max_duration)
    width, height = catalog.frame_size(model.resolutions[0], model.aspect_ratios[0])
    create = {"model": model.key, "prompt": "a lighthouse", "size": f"{width}x{height}"}
    for seconds, status in ((longest, 200), (longest + 1, 400)):
        response = tester.client().post("/v1/videos", {**create, "seconds": str(seconds)})
        assert response.status_code == status, response.content
    assert response.json()["error"]["param"] == "seconds"
