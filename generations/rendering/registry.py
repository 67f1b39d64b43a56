"""Which engine serves each catalog model on this server, and the engines themselves.

The catalog says what a model is; this module says who runs it here, from the server's
configuration: test keys run every model on the built-in `local` engine (CONTRACT 4); a
model with a built-in engine runs on it; a model the operator routed to local diffusers
pipelines (VIDEOGEN_DIFFUSERS_MODELS) runs on them, in the modes they have, ahead of any
hosted provider (and is unavailable, not sent upstream, while they cannot load); the other
models run on the first hosted provider of the provider map whose key is set."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from generations.catalog import ModelInfo
from generations.rendering.base import Engine
from generations.rendering.diffusers import config as diffusers_config
from generations.rendering.hosted import providers
from generations.rendering.local.parameters import PARAMETER_USE as LOCAL_PARAMETER_USE

if TYPE_CHECKING:  # the clients (and `requests`) are loaded where hosted jobs run
    from generations.rendering.hosted.base import RemoteEngine

LOCAL = "local"
DIFFUSERS = diffusers_config.ENGINE_NAME


def engine_name_for(model: ModelInfo, *, test_mode: bool, mode: str | None = None) -> str | None:
    """The engine that will run this model (and mode) here, or None when it is unavailable."""
    if test_mode:
        return LOCAL
    if model.engine is not None:
        return model.engine
    if diffusers_config.is_configured(model.key):
        found = diffusers_config.pipeline_for(model.key, mode)
        return DIFFUSERS if found else None
    route = providers.route_for(model.key, mode)
    return route.provider if route else None


def is_available(model: ModelInfo) -> bool:
    return engine_name_for(model, test_mode=False) is not None


def available_modes(model: ModelInfo) -> list[str]:
    return [m for m in model.modes if engine_name_for(model, test_mode=False, mode=m)]


def unavailable_reason(model: ModelInfo) -> str | None:
    """Why a model is not served here, in words an operator can act on; None if it is."""
    if is_available(model):
        return None
    local = diffusers_config.unavailable_reason(model.key)
    if local:
        return local
    names = [r.provider for r in providers.all_routes().get(model.key, ())]
    if not names:
        return "No engine on this server offers this model."
    keys = " or ".join(f"`{providers.credential_setting(p)}`" for p in dict.fromkeys(names))
    return f"Served by a hosted provider once its key is set: {keys}."


def takes_end_frame(model: ModelInfo, *, test_mode: bool, mode: str) -> bool:
    """Whatever serves this model (and mode) here can end the clip on a given last frame:
    the `local` engine, FramePack's `last_image`, a hosted route that sends one upstream."""
    if not model.end_frame:
        return False
    name = engine_name_for(model, test_mode=test_mode, mode=mode)
    if name is None:
        return False
    if name == LOCAL:
        return True
    if name == DIFFUSERS:
        found = diffusers_config.pipeline_for(model.key, mode)
        return found is not None and found.family == diffusers_config.FAMILY_FRAMEPACK
    route = providers.route_for(model.key, mode)
    return route is not None and route.takes("end_image", mode)


def extends_natively(model: ModelInfo, *, test_mode: bool) -> bool:
    """Whatever serves this model here extends a clip itself (Veo's video extension);
    otherwise an extension continues from the clip's last frame as image-to-video."""
    if not model.native_extend or test_mode:
        return False
    route = providers.route_for(model.key, None)
    serving = engine_name_for(model, test_mode=False)
    return route is not None and serving == route.provider and route.takes("source_video")


def is_hosted(engine_name: str) -> bool:
    """True for a hosted provider's engine (submit and poll), False for one that renders."""
    return engine_name in providers.PROVIDERS


def parameter_use(model: ModelInfo) -> dict[str, str] | None:
    """What the engine does with each request parameter, where the listing documents it."""
    return LOCAL_PARAMETER_USE if model.procedural else None


@cache
def get_engine(name: str) -> Engine:
    """One instance per process of an engine that renders here (it may keep pipelines
    loaded). The engines are imported on first use, not with this module: they bring numpy,
    OpenCV and PyAV (and torch on a first diffusers render), which a web process never needs."""
    if name == LOCAL:
        from generations.rendering.local.procedural import ProceduralEngine

        return ProceduralEngine()
    if name == DIFFUSERS:
        from generations.rendering.diffusers.engine import DiffusersEngine

        return DiffusersEngine()
    raise LookupError(f"no local engine named {name!r}")


def hosted_engine(name: str) -> RemoteEngine:
    return providers.engine(name)
