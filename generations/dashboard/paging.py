"""The dashboard's lists page by keyset (db/keyset.py): "Newer" and "Older" links carry a
cursor (`before=` / `after=`) beside the page's filters, so a page costs the same at the top
of a year of history as deep in it, and no page count is computed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from generations.db import keyset

M = TypeVar("M", bound=models.Model)


def page(
    request: HttpRequest, rows: QuerySet[M], keys: Sequence[str], size: int
) -> tuple[keyset.Window[M], dict[str, str]]:
    """The page the request's cursor names (the first page for none, or one not ours), and
    the URLs of the pages around it: {"newer": ..., "older": ...}, those that exist."""
    after = keyset.decode(request.GET.get("after", ""), keys)
    before = None if after is not None else keyset.decode(request.GET.get("before", ""), keys)
    window = keyset.window(rows, keys, size=size, after=after, before=before)
    kept = request.GET.copy()
    for name in ("after", "before", "page"):
        kept.pop(name, None)
    links = {}
    for label, name, cursor in (("newer", "before", window.before),
                                ("older", "after", window.after)):  # fmt: skip
        if cursor is not None:
            query = kept.copy()
            query[name] = cursor
            links[label] = f"?{query.urlencode()}"
    return window, links
