"""Model aliases (VIDEOGEN_MODEL_ALIASES): a request naming an alias is served by its
target on every surface, and every answer says which model served it and what was asked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from generations.core import accounts, apikeys
from generations.models import Generation, Sequence
from generations.routing import aliases
from generations.tasks import dispatch as polling
from tests.conftest import Account
from tests.fake_openai import FakeOpenAI

openai = pytest.importorskip("openai", reason="the openai SDK is a test dependency")


@pytest.fixture
def sora_is_local(settings: Any) -> None:
    """OpenAI retired Sora 2: this operator sends `sora-2` (and `old`) to `local`."""
    settings.VIDEOGEN_MODEL_ALIASES = [("sora-2", "local"), ("old", "local")]


# --- the setting ----------------------------------------------------------------------------


def test_good_entries_parse_and_resolve() -> None:
    parsed = aliases.parse([("sora-2", "veo-31"), ("old", "local")])
    assert parsed.targets == {"sora-2": "veo-31", "old": "local"} and not parsed.problems
    assert parsed.of("local") == ["old"]


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        ([("sora-2", "veo-9")], ["'sora-2=veo-9'", "not a catalog model"]),
        ([("a", "local"), ("b", "a")], ["'b=a'", "itself an alias"]),
        ([("sora-2", "veo-31"), ("veo-31", "sora-2")], ["itself an alias"]),  # a cycle
        ([("local", "local")], ["alias of itself"]),
        ([("old", "local"), ("old", "veo-31")], ["'old=veo-31'", "already an alias"]),
        ([("old", "")], ["'old='", "expected `alias=model`"]),
        ([("x" * 41, "local")], ["at most 40 characters"]),
    ],
)
def test_bad_entries_are_named_and_left_out(
    entries: list[tuple[str, str]], words: list[str]
) -> None:
    parsed = aliases.parse(entries)
    assert parsed.problems
    text = " ".join(parsed.problems)
    assert all(word in text for word in words), text


def test_manage_py_check_refuses_a_bad_alias(settings: Any) -> None:
    settings.VIDEOGEN_MODEL_ALIASES = [("sora-2", "veo-31"), ("old", "sora-2")]
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    assert "VIDEOGEN_MODEL_ALIASES entry 'old=sora-2'" in str(caught.value)
    assert "videogen.E110" in str(caught.value)


def test_a_good_setting_passes_the_check(settings: Any) -> None:
    settings.VIDEOGEN_MODEL_ALIASES = [("sora-2", "veo-31")]
    call_command("check")  # raises on any error


# --- VideoGenAPI -----------------------------------------------------------------------------


def test_an_alias_is_served_by_its_target_and_says_so(
    owner: Account, sora_is_local: None, sync_tasks: None
) -> None:
    answer = owner.client().post(
        "/api/v1/generate", {"model": "sora-2", "prompt": "calm ocean", "duration": 1,
                             "resolution": "480p"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["model"]["key"] == "local" and body["requested_model"] == "sora-2"
    gen = Generation.objects.get(generation_id=body["generation_id"])
    assert (gen.model, gen.requested_model, gen.engine) == ("local", "sora-2", "local")
    assert gen.status == "completed"

    status = owner.client().get(f"/api/v1/status/{gen.generation_id}").json()
    assert status["model"]["key"] == "local" and status["requested_model"] == "sora-2"
    listed = owner.client().get("/api/v1/generations").json()["generations"][0]
    assert listed["model"]["key"] == "local" and listed["requested_model"] == "sora-2"


def test_a_model_named_directly_has_no_requested_model(owner: Account, sora_is_local: None) -> None:
    body = (
        owner.client()
        .post("/api/v1/generate", {"model": "local", "prompt": "calm ocean", "duration": 1})
        .json()
    )
    assert body["model"]["key"] == "local" and "requested_model" not in body
    assert Generation.objects.get(generation_id=body["generation_id"]).requested_model == ""


def test_the_alias_is_held_to_its_targets_limits(owner: Account, settings: Any) -> None:
    settings.VIDEOGEN_MODEL_ALIASES = [("old", "ltxv-13b")]  # ltxv-13b: 480p only
    answer = owner.client().post(
        "/api/v1/generate", {"model": "old", "prompt": "x", "resolution": "1080p"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] in ("model", "resolution")


def test_an_unknown_name_is_a_400_naming_the_model(owner: Account, sora_is_local: None) -> None:
    answer = owner.client().post("/api/v1/generate", {"model": "older", "prompt": "x"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["field"] == "model" and error["code"] == "invalid_model"
    assert "old" in error["message"]  # the aliases are among the names it lists


def test_models_list_each_models_aliases(owner: Account, sora_is_local: None) -> None:
    models = {m["key"]: m for m in owner.client().get("/api/v1/models").json()["models"]}
    assert models["local"]["aliases"] == ["sora-2", "old"]
    assert models["sora-2"]["alias_of"] == "local" and models["sora-2"]["aliases"] == []
    assert "alias_of" not in models["veo-31"]


def test_batches_and_sequences_resolve_aliases(owner: Account, sora_is_local: None) -> None:
    batch = owner.client().post(
        "/api/v1/batches", {"models": ["old", "local"], "prompt": "rain", "duration": 1}
    )
    assert batch.status_code == 200, batch.content
    rows = Generation.objects.filter(generation_id__in=batch.json()["generations"])
    assert sorted(rows.values_list("model", "requested_model")) == [
        ("local", ""), ("local", "old")
    ]  # fmt: skip
    bad = owner.client().post("/api/v1/batches", {"models": ["nope"], "prompt": "rain"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "models"

    seq = owner.client().post(
        "/api/v1/sequences",
        {"model": "sora-2", "resolution": "480p", "aspect_ratio": "16:9", "transition": "cut",
         "shots": [{"prompt": "a", "duration": 1}, {"prompt": "b", "duration": 1}]},
    )  # fmt: skip
    assert seq.status_code == 200, seq.content
    assert Sequence.objects.get(sequence_id=seq.json()["sequence_id"]).model == "local"
    shots = Generation.objects.filter(generation_id__in=seq.json()["generations"])
    assert set(shots.values_list("model", "requested_model")) == {("local", "sora-2")}


def test_framepack_answers_with_the_served_model(owner: Account, settings: Any) -> None:
    settings.VIDEOGEN_MODEL_ALIASES = [("framepack", "local")]
    body = (
        owner.client().post("/v1/generate-video", {"prompt": "a kite", "duration": 1}).json()
    )  # no model: Framepack's default, `framepack`, is the alias here
    assert body["model"] == "local" and body["requested_model"] == "framepack"


def test_the_openapi_schema_accepts_an_alias_with_its_targets_limits(
    owner: Account, settings: Any
) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    settings.VIDEOGEN_MODEL_ALIASES = [("old", "veo-31")]  # Veo 3.1: 8 s only
    schema = owner.client().get("/api/openapi.json").json()["components"]["schemas"]
    valid = jsonschema_rs.Draft202012Validator(schema["GenerateRequest"]).is_valid
    assert valid({"model": "old", "prompt": "x", "duration": 8})
    assert not valid({"model": "old", "prompt": "x", "duration": 5})
    assert "requested_model" in schema["Generation"]["properties"]
    assert "requested_model" in schema["Video"]["properties"]


# --- the openai SDK -------------------------------------------------------------------------


@pytest.fixture
def sdk(live_server: Any, transactional_db: None, sync_tasks: None) -> Iterator[Any]:
    user = accounts.user_create(email="sdk@example.com", password="a long pass phrase 9")
    team = accounts.team_personal_get(user=user)
    _, raw = apikeys.api_key_create(team=team, user=user, name="sdk")
    client = openai.OpenAI(base_url=live_server.url + "/v1", api_key=raw, max_retries=0)
    yield client
    client.close()


def test_the_openai_sdk_asks_for_sora_2_and_gets_the_target(sdk: Any, sora_is_local: None) -> None:
    video = sdk.videos.create(model="sora-2", prompt="A lantern over a lake", seconds="4",
                              size="1280x720")  # fmt: skip
    video = sdk.videos.retrieve(video.id)
    assert video.status == "completed"
    assert video.model == "local" and video.model_extra["requested_model"] == "sora-2"
    gen = Generation.objects.get(generation_id=video.id)
    assert (gen.model, gen.requested_model) == ("local", "sora-2")
    assert sdk.videos.download_content(video.id).read()[4:8] == b"ftyp"


HOSTED_MAP = """
[wan-25.openai]
text-to-video = "sora-2"
typical_s = 1
[wan-25.openai.input]
prompt = "prompt"
seconds = "=4"
size = "=1280x720"
"""
OPENAI_KEY = "sk-test-aliases"


def test_the_openai_sdk_alias_runs_on_a_hosted_target(
    sdk: Any, settings: Any, tmp_path: Path
) -> None:
    """`sora-2` sent to `wan-25`, which a (fake) hosted provider serves."""
    with FakeOpenAI(key=OPENAI_KEY, polls=1) as fake:
        path = tmp_path / "providers.toml"
        path.write_text(HOSTED_MAP)
        settings.VIDEOGEN_PROVIDER_MAP = str(path)
        settings.OPENAI_API_KEY = OPENAI_KEY
        settings.OPENAI_BASE_URL = f"{fake.url}/v1"
        settings.VIDEOGEN_POLL_FIRST_S = 0.001
        settings.VIDEOGEN_POLL_MAX_S = 0.004
        settings.VIDEOGEN_MODEL_ALIASES = [("sora-2", "wan-25")]
        # sora-2 takes 4 s; so does wan-25 (1-30 s): the target's limits decide.
        video = sdk.videos.create(model="sora-2", prompt="a paper boat", seconds="4",
                                  size="854x480")  # fmt: skip
        assert video.model == "wan-25" and video.model_extra["requested_model"] == "sora-2"
        end = time.monotonic() + 120
        while not Generation.objects.get(generation_id=video.id).is_final:
            assert time.monotonic() < end, "still running"
            if not polling.dispatch_due():
                time.sleep(0.005)
        video = sdk.videos.retrieve(video.id)
        assert video.status == "completed", video.error
        assert video.model == "wan-25" and video.model_extra["requested_model"] == "sora-2"
        gen = Generation.objects.get(generation_id=video.id)
        assert (gen.model, gen.requested_model, gen.engine) == ("wan-25", "sora-2", "openai")
        upstream = fake.api_requests("POST")[0]
        assert upstream.path == "/v1/videos"
