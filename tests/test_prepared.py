from __future__ import annotations

import pytest

from generations.db.prepared import PreparedQuery
from generations.models import ApiKey, Generation
from tests.conftest import Account

KEYS = PreparedQuery(
    lambda digest: ApiKey.objects.select_related("team", "user").filter(digest=digest),
    digest="\x00digest",
)


def test_a_prepared_lookup_returns_what_the_orm_returns(owner: Account) -> None:
    prepared = KEYS.first(digest=owner.key.digest)
    orm = ApiKey.objects.select_related("team", "user").get(digest=owner.key.digest)
    assert prepared is not None
    assert [getattr(prepared, f.attname) for f in ApiKey._meta.concrete_fields] == [
        getattr(orm, f.attname) for f in ApiKey._meta.concrete_fields
    ]
    # select_related objects are built too, with converted values (datetimes, UUIDs).
    assert prepared.team.code == orm.team.code and prepared.user.email == orm.user.email
    assert prepared.created_at == orm.created_at and prepared.created_at.tzinfo is not None


def test_a_prepared_lookup_binds_new_values_each_call(owner: Account, outsider: Account) -> None:
    assert KEYS.first(digest=owner.key.digest).user.email == "alice@example.com"  # type: ignore[union-attr]
    assert KEYS.first(digest=outsider.key.digest).user.email == "mallory@example.com"  # type: ignore[union-attr]
    assert KEYS.first(digest="no such digest") is None


def test_a_shape_whose_parameters_cannot_be_named_is_refused(db: None) -> None:
    ambiguous = PreparedQuery(
        lambda a, b: Generation.objects.filter(prompt=a, negative_prompt=b), a="same", b="same"
    )
    with pytest.raises(ValueError, match="cannot bind"):
        ambiguous.first(a="x", b="y")
