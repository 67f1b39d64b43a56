"""The hosted providers, registered once: their names, their credentials, their clients, and
the map of which provider serves each model (routes.py parses it; this module loads it).

Adding a provider means writing its client beside this one (a class with `name`,
`from_settings`, `submit`, `poll` and `cancel`; see base.RemoteEngine), naming it and its
credential in PROVIDERS and `_clients`, and its routes in providers.toml. Nothing outside
generations/rendering names a provider."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from generations.ids import split_keys
from generations.rendering.hosted import routes

if TYPE_CHECKING:
    from generations.rendering.hosted.base import RemoteEngine

# Each provider and the setting (and environment variable) that holds this server's key for
# it, in the order the provider map's error messages list them.
PROVIDERS: dict[str, str] = {
    "fal": "FAL_KEY",
    "replicate": "REPLICATE_API_TOKEN",
    "gemini": "GEMINI_API_KEY",
    "openai": "OPENAI_API_KEY",
}


def credential_setting(provider: str) -> str:
    return PROVIDERS[provider]


def clients() -> dict[str, type[RemoteEngine]]:
    """The providers' clients. Imported here, on first use in the workers that run hosted
    jobs: they bring `requests`, which a web process (it only validates against the map)
    never needs."""
    from generations.rendering.hosted.fal import FalEngine
    from generations.rendering.hosted.gemini import GeminiEngine
    from generations.rendering.hosted.openai import OpenAIEngine
    from generations.rendering.hosted.replicate import ReplicateEngine

    return {client.name: client for client in (FalEngine, ReplicateEngine, GeminiEngine,
                                                OpenAIEngine)}  # fmt: skip


def keys(provider: str) -> list[str]:
    """The provider's keys, in the operator's order: its setting may hold a pool of them,
    comma-separated (routing/pools.py spreads jobs over them)."""
    return split_keys(str(getattr(settings, credential_setting(provider), "") or ""))


def configured(provider: str) -> bool:
    return bool(keys(provider))


def engine(provider: str, key: str | None = None) -> RemoteEngine:
    """The provider's client, built from the current settings (cheap: it holds no state),
    calling with `key` (one key of the pool; None: the first)."""
    if provider not in PROVIDERS:
        raise LookupError(f"no hosted provider named {provider!r}")
    return clients()[provider].from_settings(key=key)


@cache
def all_routes() -> dict[str, list[routes.Route]]:
    """Every route in the map, configured or not: model key -> routes in preference order.
    The operator's file (VIDEOGEN_PROVIDER_MAP) replaces the default's entry per model."""
    found = routes.parse(routes.read(routes.DEFAULT_MAP), routes.DEFAULT_MAP.name, PROVIDERS)
    override = getattr(settings, "VIDEOGEN_PROVIDER_MAP", "")
    if override:
        path = Path(override)
        found.update(routes.parse(routes.read(path), str(path), PROVIDERS))
    # Prices the operator sets without rewriting routes (VIDEOGEN_PRICE_MAP).
    prices = getattr(settings, "VIDEOGEN_PRICE_MAP", "")
    if prices:
        path = Path(prices)
        found = routes.apply_prices(found, routes.read(path), str(path))
    return found


@receiver(setting_changed)
def _forget(setting: str, **kwargs: Any) -> None:
    if setting in ("VIDEOGEN_PROVIDER_MAP", "VIDEOGEN_PRICE_MAP", *PROVIDERS.values()):
        all_routes.cache_clear()


def route_for(model: str, mode: str | None = None) -> routes.Route | None:
    """The route that serves this model (and mode) here: the first configured one."""
    for route in all_routes().get(model, ()):
        if configured(route.provider) and (mode is None or mode in route.upstream):
            return route
    return None
