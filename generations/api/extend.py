"""Extending a generation: `POST /api/v1/generations/{id}/extend` (CONTRACT 6). The answer
is a new generation's, shaped like generate's."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase

from generations.api.common import api_endpoint, authenticate, json_body, public_url, videogen_error
from generations.api.idempotency import idempotent
from generations.api.videogenapi import submitted
from generations.core import extensions, webhooks
from generations.errors import ApiError
from generations.models import Generation

endpoint = api_endpoint


@endpoint(("POST",), videogen_error)
def extend(request: HttpRequest, generation_id: str) -> HttpResponseBase:
    """A new generation: the source's video followed by `duration` more seconds."""
    key = authenticate(request)
    source = (
        Generation.objects.select_related("team")
        .filter(team_id=key.team_id, generation_id=generation_id)
        .first()
    )
    if source is None:
        raise ApiError(404, "not_found", f"No generation {generation_id!r} in this team.")
    data = json_body(request)
    usage: list[int] = []

    def create() -> Generation:
        webhook_url = webhooks.validate_url(data.get("webhook_url"))
        gen, used = extensions.generation_extend(
            source=source,
            user=key.user,
            api_key=key,
            data=data,
            surface="videogenapi",
            webhook_url=webhook_url,
            public_base=public_url(request, ""),
        )
        usage.append(used)
        return gen

    return idempotent(request, key, create, lambda gen: submitted(request, key, gen, usage))
