from __future__ import annotations

import pytest

from generations.core import apikeys
from generations.errors import ApiError
from generations.models import ApiKey
from tests.conftest import Account


def test_live_and_test_keys_have_their_prefix_and_a_valid_checksum() -> None:
    live, test = apikeys.generate(test=False), apikeys.generate(test=True)
    assert live.startswith("vg_live_") and test.startswith("vg_test_")
    assert len(live) - len("vg_live_") >= 32 + 6
    assert apikeys.is_well_formed(live) and apikeys.is_well_formed(test)


def test_a_single_changed_character_breaks_the_checksum() -> None:
    raw = apikeys.generate(test=False)
    i = len("vg_live_") + 3
    typo = raw[:i] + ("A" if raw[i] != "A" else "B") + raw[i + 1 :]
    assert not apikeys.is_well_formed(typo)


def test_only_a_digest_is_stored_and_the_list_shows_prefix_and_last_four(owner: Account) -> None:
    key = ApiKey.objects.get(pk=owner.key.pk)
    stored = [str(getattr(key, f.attname)) for f in ApiKey._meta.concrete_fields]
    assert all(owner.raw_key not in value for value in stored)
    assert key.display == f"vg_live_...{owner.raw_key[-4:]}"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("Basic abc", "invalid_authorization"),
        ("Bearer vg_live_short", "invalid_api_key"),
        ("Bearer <well-formed but unknown>", "invalid_api_key"),
    ],
)
def test_it_rejects_missing_malformed_and_unknown_keys(
    owner: Account, header: str | None, code: str
) -> None:
    if header == "Bearer <well-formed but unknown>":
        header = "Bearer " + apikeys.generate(test=False)
    with pytest.raises(ApiError) as caught:
        apikeys.api_key_authenticate(header)
    assert caught.value.status == 401 and caught.value.code == code


def test_a_revoked_key_gets_401_on_every_endpoint(owner: Account) -> None:
    apikeys.api_key_revoke(key=owner.key)
    client = owner.client()
    for response in (
        client.get("/api/v1/user"),
        client.get("/api/v1/generations"),
        client.post("/api/v1/generate", {"model": "local", "prompt": "x"}),
    ):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "revoked_api_key"


def test_using_a_key_records_when_it_was_last_used(owner: Account) -> None:
    assert ApiKey.objects.get(pk=owner.key.pk).last_used_at is None
    assert owner.client().get("/api/v1/user").status_code == 200
    assert ApiKey.objects.get(pk=owner.key.pk).last_used_at is not None
