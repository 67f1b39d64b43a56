"""The audio step's routes: video-to-audio models (Mirelo SFX v1.5, MMAudio) that give a
finished silent video its sound (CONTRACT 5: AAC audio when `add_audio` is true).

A table of their own, `audio_routes.toml` beside this module (VIDEOGEN_AUDIO_MAP replaces
it), in the provider map's format: `[<route>.<provider>]` with the upstream `endpoint`, its
`input` table (routes.py's expressions; `source_video` is the silent video), `usd_per_s`
(US dollars per second of video, like the video routes' prices), `typical_s` and
`deadline_s`. A route serves when its provider's key is set; they are tried in the file's
order. The route's name is what `Generation.audio_source` records.

What a job remembers between its short steps in the audio phase is an AudioState, kept on
the generation beside the video job's (`engine_handle["audio"]`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from generations.rendering.hosted import providers, routes
from generations.spec import GenerationSpec
from generations.vocabulary import MODES, T2V

DEFAULT_MAP = Path(__file__).with_name("audio_routes.toml")
DEFAULT_DEADLINE_S = 600.0
DEFAULT_TYPICAL_S = 20.0
# engine_handle's key for the audio phase's state.
HANDLE_KEY = "audio"
# Generation.audio_source values other than a route's name.
NATIVE, PROCEDURAL = "native", "procedural"
MAX_NAME_CHARS = 40  # Generation.audio_source


@dataclass(frozen=True)
class AudioRoute:
    name: str  # what Generation.audio_source records, e.g. "mirelo-sfx-v1.5"
    provider: str
    endpoint: str  # the upstream model id, whatever the generation's mode
    input: Mapping[str, Any]
    usd_per_s: Decimal
    deadline_s: float
    typical_s: float

    def as_route(self) -> routes.Route:
        """The same route in the provider map's terms (routes.translate, the clients)."""
        return routes.Route(
            model=self.name,
            provider=self.provider,
            upstream={mode.value: self.endpoint for mode in MODES},
            input=self.input,
            deadline_s=self.deadline_s,
            typical_s=self.typical_s,
        )

    def job(self, spec: GenerationSpec, video: routes.VideoInput | None) -> routes.Job:
        """The provider's job for the silent `video` (None on polls: it is not sent again).
        The sound follows `audio_prompt`, else the prompt."""
        spec = dataclasses.replace(spec, audio_prompt=spec.audio_prompt or spec.prompt)
        route = self.as_route()
        return routes.Job(
            spec=spec,
            route=route,
            upstream_model=self.endpoint,
            input=routes.translate(route, spec, None, source_video=video),
            image=None,
            source_video=video,
        )

    def price_usd(self, seconds: float) -> Decimal:
        return (self.usd_per_s * Decimal(str(seconds))).quantize(Decimal("0.0001"))


def parse(data: Mapping[str, Any], source: str) -> list[AudioRoute]:
    found: list[AudioRoute] = []
    for name, tables in data.items():
        if not isinstance(tables, dict):
            raise routes.MapError(f"{source}: [{name}] must be a table of providers")
        if len(name) > MAX_NAME_CHARS:
            raise routes.MapError(f"{source}: [{name}]: at most {MAX_NAME_CHARS} characters")
        for provider, table in tables.items():
            where = f"{source}: [{name}.{provider}]"
            if provider not in providers.PROVIDERS:
                known = ", ".join(providers.PROVIDERS)
                raise routes.MapError(f"{where}: unknown provider (known: {known})")
            if not isinstance(table, dict) or not isinstance(table.get("endpoint"), str):
                raise routes.MapError(f"{where}: name the upstream `endpoint`")
            inputs = table.get("input", {})
            if not isinstance(inputs, dict):
                raise routes.MapError(f"{where}.input must be a table")
            try:
                route = AudioRoute(
                    name=name,
                    provider=provider,
                    endpoint=table["endpoint"],
                    input=inputs,
                    usd_per_s=Decimal(str(table.get("usd_per_s", 0))),
                    deadline_s=float(table.get("deadline_s", DEFAULT_DEADLINE_S)),
                    typical_s=float(table.get("typical_s", DEFAULT_TYPICAL_S)),
                )
                route.job(_SAMPLE, routes.VideoInput(b"", "video/mp4"))  # every expression
            except (ArithmeticError, ValueError, TypeError) as exc:
                raise routes.MapError(f"{where}: {exc}") from None
            found.append(route)
    return found


_SAMPLE = GenerationSpec(
    model="local", mode=T2V, prompt="x", negative_prompt="", image_url="", duration=1,
    resolution="480p", aspect_ratio="16:9", width=854, height=480, fps=30, num_frames=30,
    seed=1, camera_fixed=False, add_audio=True, audio_prompt="", style="", cfg_scale=None,
    guidance_scale=None, enable_safety_checker=True,
)  # fmt: skip


@cache
def all_routes() -> tuple[AudioRoute, ...]:
    """Every audio route, configured or not, in preference order."""
    path = Path(getattr(settings, "VIDEOGEN_AUDIO_MAP", "") or DEFAULT_MAP)
    return tuple(parse(routes.read(path), path.name if path == DEFAULT_MAP else str(path)))


@receiver(setting_changed)
def _forget(setting: str, **kwargs: Any) -> None:
    if setting == "VIDEOGEN_AUDIO_MAP":
        all_routes.cache_clear()


def configured() -> list[AudioRoute]:
    """The routes that can serve here (their provider's key is set), in order."""
    return [route for route in all_routes() if providers.configured(route.provider)]


def by_name(name: str) -> AudioRoute | None:
    return next((r for r in configured() if r.name == name), None)


@dataclass
class AudioState:
    """The audio phase of one generation, between its short steps (engine_handle["audio"])."""

    route: str = ""  # the route now trying
    tried: list[str] = field(default_factory=list)  # routes that failed for good
    work: str = ""  # the silent video, kept in media storage between steps
    job: dict[str, Any] | None = None  # the provider's handle
    deadline: float = 0.0
    started: float = 0.0
    polls: int = 0
    retries: int = 0  # transient failures of this route, counted across steps
    last_error: str = ""
    usd: str = ""  # the price of the sound that was used (route's usd_per_s x seconds)
    finished: bool = False

    @classmethod
    def load(cls, handle: Mapping[str, Any] | None) -> AudioState | None:
        data = (handle or {}).get(HANDLE_KEY)
        if not isinstance(data, dict):
            return None
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def dump(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def in_audio_phase(handle: Mapping[str, Any] | None) -> bool:
    """True while the generation waits on its audio step (the status says so)."""
    state = AudioState.load(handle)
    return state is not None and not state.finished
