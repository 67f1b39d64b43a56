"""The hosted providers, registered once: their engines, their credentials, and the map of
which provider serves each model (routes.py parses it; this module loads it).

Adding a provider means writing its engine module beside this one (a class with `name`,
`credential`, `from_settings`, `submit`, `poll` and `cancel`; see base.RemoteEngine), adding
the class to ENGINES and its routes to providers.toml. Nothing outside generations/rendering
names a provider."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from generations.rendering.hosted import routes
from generations.rendering.hosted.base import RemoteEngine
from generations.rendering.hosted.fal import FalEngine
from generations.rendering.hosted.gemini import GeminiEngine
from generations.rendering.hosted.openai import OpenAIEngine
from generations.rendering.hosted.replicate import ReplicateEngine

# In the order the provider map's error messages list them.
ENGINES: tuple[type[RemoteEngine], ...] = (FalEngine, ReplicateEngine, GeminiEngine, OpenAIEngine)
PROVIDERS: dict[str, type[RemoteEngine]] = {engine.name: engine for engine in ENGINES}


def credential_setting(provider: str) -> str:
    """The setting (and environment variable) that holds the provider's key."""
    return PROVIDERS[provider].credential


def configured(provider: str) -> bool:
    return bool(getattr(settings, credential_setting(provider), ""))


def engine(provider: str) -> RemoteEngine:
    """The provider's client, built from the current settings (cheap: it holds no state)."""
    if provider not in PROVIDERS:
        raise LookupError(f"no hosted provider named {provider!r}")
    return PROVIDERS[provider].from_settings()


@cache
def all_routes() -> dict[str, list[routes.Route]]:
    """Every route in the map, configured or not: model key -> routes in preference order.
    The operator's file (VIDEOGEN_PROVIDER_MAP) replaces the default's entry per model."""
    found = routes.parse(routes.read(routes.DEFAULT_MAP), routes.DEFAULT_MAP.name, PROVIDERS)
    override = getattr(settings, "VIDEOGEN_PROVIDER_MAP", "")
    if override:
        path = Path(override)
        found.update(routes.parse(routes.read(path), str(path), PROVIDERS))
    return found


@receiver(setting_changed)
def _forget(setting: str, **kwargs: Any) -> None:
    if setting in ("VIDEOGEN_PROVIDER_MAP", *(e.credential for e in ENGINES)):
        all_routes.cache_clear()


def route_for(model: str, mode: str | None = None) -> routes.Route | None:
    """The route that serves this model (and mode) here: the first configured one."""
    for route in all_routes().get(model, ()):
        if configured(route.provider) and (mode is None or mode in route.upstream):
            return route
    return None
