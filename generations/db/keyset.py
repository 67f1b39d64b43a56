"""Keyset ("seek") pagination: the next page is the rows after the last one shown, found
through an index however deep the list goes, where OFFSET reads and throws away every row
before the page, and a page count needs a COUNT over all of them.

A list is ordered by a few fields, all in one direction and none of them NULL, the primary
key last (so the order is total). A cursor is the sort values of the row a page ends (or
starts) at, in an opaque URL-safe string; one that does not decode is refused by the
caller (`decode` returns None). `window` returns a page after a cursor (further down the
list), before one (back up), or from the top.

The seek condition is spelled as `(a < x) OR (a = x AND pk < y)` with the redundant `a <= x`
beside it: that bound is what an index on (..., a, pk) can start its scan from, on
PostgreSQL and SQLite alike."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db import models
from django.db.models import Q, QuerySet

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class Window(Generic[M]):
    """One page: its rows, and the cursors of the pages after and before it (None at either
    end of the list)."""

    items: list[M]
    after: str | None  # further down the list: pass as `after`
    before: str | None  # back up the list: pass as `before`

    def __iter__(self) -> Iterator[M]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def _name(key: str) -> str:
    return key.lstrip("-")


def _value(obj: models.Model, key: str) -> Any:
    name = _name(key)
    return obj.pk if name == "pk" else getattr(obj, name)


def encode(obj: models.Model, keys: Sequence[str]) -> str:
    values = [_value(obj, key) for key in keys]
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps(plain, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, keys: Sequence[str]) -> list[Any] | None:
    """The sort values a cursor of a list ordered by `keys` holds (datetimes travel as ISO
    8601 with their offset, integers as numbers); None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    if not isinstance(values, list) or len(values) != len(keys):
        return None
    converted: list[Any] = []
    for value in values:
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                return None
            if parsed.tzinfo is None:
                return None
            converted.append(parsed)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63:
            converted.append(value)
        else:
            return None
    return converted


def _seek(keys: Sequence[str], values: Sequence[Any], *, forward: bool) -> Q:
    """Rows strictly past `values` in the order of `keys` (forward) or strictly before it."""
    descending = keys[0].startswith("-")
    past = "lt" if descending == forward else "gt"
    names = [_name(key) for key in keys]
    condition = Q()
    for i, name in enumerate(names):
        step = Q(**{f"{name}__{past}": values[i]})
        for earlier in range(i):
            step &= Q(**{names[earlier]: values[earlier]})
        condition |= step
    bound = Q(**{f"{names[0]}__{past}e": values[0]})
    return bound & condition


def window(
    rows: QuerySet[M],
    keys: Sequence[str],
    *,
    size: int,
    after: Sequence[Any] | None = None,
    before: Sequence[Any] | None = None,
) -> Window[M]:
    """A page of `size` rows of `rows` in the order of `keys` (all ascending or all
    descending, the primary key last): from the top, after the row `after` names, or the
    page that ends just before the row `before` names."""
    if len({key.startswith("-") for key in keys}) != 1 or _name(keys[-1]) != "pk":
        raise ValueError("keys go one way and end with the primary key")
    if before is not None:
        flipped = [key[1:] if key.startswith("-") else f"-{key}" for key in keys]
        found = list(rows.filter(_seek(keys, before, forward=False)).order_by(*flipped)[: size + 1])
        more_before = len(found) > size
        items = list(reversed(found[:size]))
        return Window(
            items,
            after=encode(items[-1], keys) if items else None,
            before=encode(items[0], keys) if items and more_before else None,
        )
    if after is not None:
        rows = rows.filter(_seek(keys, after, forward=True))
    found = list(rows.order_by(*keys)[: size + 1])
    items = found[:size]
    return Window(
        items,
        after=encode(items[-1], keys) if len(found) > size else None,
        before=encode(items[0], keys) if items and after is not None else None,
    )
