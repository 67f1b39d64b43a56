"""The provider map: which hosted provider serves each catalog model, and how our request
becomes the provider's input.

The map is a TOML file. The default ships beside this module (`providers.toml`);
operators point `VIDEOGEN_PROVIDER_MAP` at their own file, whose model entries replace the
default's whole entry for that model (so they also choose the order of providers). Each
`[<model>.<provider>]` table names the upstream model per mode and an `input` table that
maps each upstream field to an expression over our request:

    duration = "duration|str"           # our field, then filters left to right
    image_url = "image|data_url"        # the validated input image as a data: URL
    generate_audio = "add_audio"
    enhance_prompt = false              # TOML values other than strings are literals
    style = "=cinematic"                # a string literal starts with "="

Fields: every GenerationSpec field, plus `image` (the input image), `end_image` (the last
frame, end_image_url), `source_video` (the clip a native extension continues; when a job
has one, the fields that read `image` are left out: the clip replaces the first frame),
`size` ("1280x720") and `frames` (= num_frames). Optional `durations`, `resolutions` and
`aspect_ratios` lists narrow what the route accepts when the provider takes less than the
model's reference limits; requests outside them get a 400 naming the field. A route whose
provider serves end frames from an endpoint of its own adds a `with_end_image` table (its
upstream models and its whole `input` table), used instead when the job has an end image.

Filters: str, int, float, bool, lower, suffix:<text>, map:<ours>=<theirs>;..., data_url,
base64, mime (these three on an image or a video), and only:<mode>, which sends the field
in that mode only (say `aspect_ratio|only:text-to-video` where the image sets the frame).
Empty values ("" or unset) are left out of the input, so the provider applies its own
default. A route takes an end image (`Route.takes`) only where it sends `end_image`: in a
mode whose upstream has no end-frame field, validation refuses end_image_url. When a model
lists several providers, the first whose credentials are set serves it (see providers.py,
which loads the map and knows the providers), and the others, in order, take the jobs it
fails transiently (generations/routing/failover.py).

Prices, in US dollars per second of video (see docs/providers.md for the sources):

    usd_per_s = 0.07                                  # one price
    usd_per_s = { 480p = 0.05, 720p = 0.10, 1080p = 0.15 }   # by resolution
    usd_per_s_audio = 0.40                            # with add_audio (a number or a table)
    usd_per_unit = 0.02                               # one unit the provider bills (fal's
                                                      # billable units); default: a second

A route without `usd_per_s` is unpriced: its jobs are estimated and costed at $0 (say so
in the operator's map). `VIDEOGEN_PRICE_MAP` names a TOML file of `[<model>.<provider>]`
tables holding only these keys: they replace the prices of those routes (apply_prices).
"""

from __future__ import annotations

import base64
import dataclasses
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from generations.spec import GenerationSpec
from generations.vocabulary import MODES

DEFAULT_MAP = Path(__file__).with_name("providers.toml")
# Whole-job limit when a route does not set its own (`deadline_s`).
DEFAULT_DEADLINE_S = 1800.0
# Typical run time upstream: drives the progress estimate for providers that report none.
DEFAULT_TYPICAL_S = 90.0


class MapError(ValueError):
    """The provider map file is malformed: the message says where."""


@dataclass(frozen=True)
class ImageInput:
    data: bytes
    mime: str

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"


@dataclass(frozen=True)
class VideoInput:
    """A clip sent upstream: the source of a native extension (Veo's video extension)."""

    data: bytes
    mime: str

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"


# The keys of a price (in a route's table, or in VIDEOGEN_PRICE_MAP's).
PRICE_KEYS = ("usd_per_s", "usd_per_s_audio", "usd_per_unit")
RESOLUTIONS = ("480p", "720p", "1080p", "4K")


@dataclass(frozen=True)
class Price:
    """A route's price in US dollars per second of video: one figure for every resolution
    (key ""), or one per resolution; with audio, where the provider charges more for it;
    and the price of one unit the provider bills, where it reports billed units."""

    per_s: Mapping[str, Decimal] = field(default_factory=dict)
    per_s_audio: Mapping[str, Decimal] = field(default_factory=dict)
    per_unit: Decimal | None = None

    @property
    def known(self) -> bool:
        return bool(self.per_s)

    def per_second(self, resolution: str, audio: bool = False) -> Decimal:
        """The price of a second at this resolution (the highest listed for one the table
        does not name: a price errs on the side of spending less than the budget allows)."""
        table = self.per_s_audio if audio and self.per_s_audio else self.per_s
        if not table:
            return Decimal(0)
        if "" in table:
            return table[""]
        return table.get(resolution, max(table.values()))


Media = ImageInput | VideoInput
# Fields that hold media; `source_video` replaces the fields that read `image`.
MEDIA_FIELDS = ("image", "end_image", "source_video")


@dataclass(frozen=True)
class Route:
    model: str  # our catalog key
    provider: str
    upstream: Mapping[str, str]  # mode -> upstream model id
    input: Mapping[str, Any]  # upstream field -> expression or literal
    deadline_s: float
    typical_s: float
    # What the provider accepts when narrower than the model's reference limits (empty: all).
    durations: tuple[int, ...] = ()
    resolutions: tuple[str, ...] = ()
    aspect_ratios: tuple[str, ...] = ()
    # The same provider's endpoint for jobs with an end image, when it has one of its own.
    with_end_image: Route | None = None
    price: Price = field(default_factory=Price)

    def takes(self, name: str, mode: str | None = None) -> bool:
        """True when the route sends our field `name` upstream (in `mode`, when given):
        `end_image`, the route can end on a given frame; `source_video`, it extends a clip
        natively."""
        variant = self.with_end_image
        if name == "end_image" and variant is not None and variant.takes(name, mode):
            return True
        for expr in self.input.values():
            if not isinstance(expr, str) or expr.startswith("="):
                continue
            compiled = _compile(expr)
            if compiled.name == name and (mode is None or compiled.mode in (None, mode)):
                return mode is None or mode in self.upstream
        return False


@dataclass(frozen=True)
class Job:
    """One generation as a provider sees it: the route (the end-image endpoint's, when it
    served), the translated input, and the media."""

    spec: GenerationSpec
    route: Route
    upstream_model: str
    input: dict[str, Any]
    image: ImageInput | None
    end_image: ImageInput | None = None
    source_video: VideoInput | None = None


# --- loading ------------------------------------------------------------------------------


def parse(data: Mapping[str, Any], source: str, known: Collection[str]) -> dict[str, list[Route]]:
    """The routes of one map file, by model key; `known`: the provider names it may use."""
    routes: dict[str, list[Route]] = {}
    for model, providers in data.items():
        if not isinstance(providers, dict):
            raise MapError(f"{source}: [{model}] must be a table of providers")
        for provider, table in providers.items():
            where = f"{source}: [{model}.{provider}]"
            if provider not in known:
                raise MapError(f"{where}: unknown provider (known: {', '.join(known)})")
            if not isinstance(table, dict):
                raise MapError(f"{where} must be a table")
            routes.setdefault(model, []).append(_route(model, provider, table, where))
    return routes


def _route(model: str, provider: str, table: dict[str, Any], where: str) -> Route:
    upstream = {mode.value: table[mode] for mode in MODES if mode in table}
    if not upstream or not all(isinstance(v, str) for v in upstream.values()):
        raise MapError(f"{where}: name the upstream model for at least one mode")
    inputs = table.get("input", {})
    if not isinstance(inputs, dict):
        raise MapError(f"{where}.input must be a table")
    for name, expr in inputs.items():
        if isinstance(expr, str) and not expr.startswith("="):
            try:
                _compile(expr)
            except MapError as exc:
                raise MapError(f"{where}.input.{name}: {exc}") from None
    variant = table.get("with_end_image")
    if variant is not None and not isinstance(variant, dict):
        raise MapError(f"{where}.with_end_image must be a table")
    deadline_s = float(table.get("deadline_s", DEFAULT_DEADLINE_S))
    typical_s = float(table.get("typical_s", DEFAULT_TYPICAL_S))
    price = price_of(table, where)
    return Route(
        model=model,
        provider=provider,
        upstream=upstream,
        input=inputs,
        deadline_s=deadline_s,
        typical_s=typical_s,
        durations=tuple(int(d) for d in table.get("durations", ())),
        resolutions=tuple(str(r) for r in table.get("resolutions", ())),
        aspect_ratios=tuple(str(a) for a in table.get("aspect_ratios", ())),
        with_end_image=None
        if variant is None
        else dataclasses.replace(
            _route(model, provider, variant, f"{where}.with_end_image"),
            deadline_s=float(variant.get("deadline_s", deadline_s)),
            typical_s=float(variant.get("typical_s", typical_s)),
            # The end-image endpoint costs what the route costs unless it says otherwise.
            price=price_of(variant, f"{where}.with_end_image") if "usd_per_s" in variant else price,
        ),
        price=price,
    )


def _usd(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MapError(f"{where} must be a number of US dollars, not {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise MapError(f"{where} must be a number of US dollars, not {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise MapError(f"{where} must be a number of US dollars, 0 or more, not {value!r}")
    return amount


def _per_s(value: Any, where: str) -> dict[str, Decimal]:
    """A price per second: a number, or a table by resolution."""
    if not isinstance(value, dict):
        return {"": _usd(value, where)}
    if not value:
        raise MapError(f"{where} must name at least one resolution")
    for key in value:
        if key not in RESOLUTIONS:
            raise MapError(f"{where}: unknown resolution {key!r} (resolutions: "
                           f"{', '.join(RESOLUTIONS)})")  # fmt: skip
    return {key: _usd(amount, f"{where}.{key}") for key, amount in value.items()}


def price_of(table: Mapping[str, Any], where: str) -> Price:
    """The price a route's table (or a VIDEOGEN_PRICE_MAP entry) sets; MapError naming the
    key for a malformed one."""
    if "usd_per_s_audio" in table and "usd_per_s" not in table:
        raise MapError(f"{where}: usd_per_s_audio needs usd_per_s (the price without audio)")
    unit = table.get("usd_per_unit")
    return Price(
        per_s=_per_s(table["usd_per_s"], f"{where}.usd_per_s") if "usd_per_s" in table else {},
        per_s_audio=_per_s(table["usd_per_s_audio"], f"{where}.usd_per_s_audio")
        if "usd_per_s_audio" in table
        else {},
        per_unit=None if unit is None else _usd(unit, f"{where}.usd_per_unit"),
    )


def apply_prices(
    found: dict[str, list[Route]], data: Mapping[str, Any], source: str
) -> dict[str, list[Route]]:
    """The routes with the prices of a price map (VIDEOGEN_PRICE_MAP) in place of theirs:
    `[<model>.<provider>]` tables of PRICE_KEYS only, each naming a route of the map."""
    for model, providers in data.items():
        if not isinstance(providers, dict):
            raise MapError(f"{source}: [{model}] must be a table of providers")
        if model not in found:
            raise MapError(f"{source}: [{model}]: no such model in the provider map")
        for provider, table in providers.items():
            where = f"{source}: [{model}.{provider}]"
            if not isinstance(table, dict):
                raise MapError(f"{where} must be a table")
            unknown = sorted(set(table) - set(PRICE_KEYS))
            if unknown:
                raise MapError(f"{where}: unknown key {unknown[0]!r} (keys: "
                               f"{', '.join(PRICE_KEYS)})")  # fmt: skip
            index = next((i for i, r in enumerate(found[model]) if r.provider == provider), None)
            if index is None:
                raise MapError(f"{where}: {provider} does not serve {model} in the provider map")
            price = price_of(table, where)
            route = found[model][index]
            variant = route.with_end_image
            if variant is not None:
                variant = dataclasses.replace(variant, price=price)
            found[model][index] = dataclasses.replace(route, price=price, with_end_image=variant)
    return found


def read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise MapError(f"cannot read the provider map {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise MapError(f"{path}: {exc}") from None


# --- translation --------------------------------------------------------------------------

Filter = Callable[[Any, str], Any]


def _map(value: Any, arg: str) -> Any:
    pairs = dict(item.split("=", 1) for item in arg.split(";") if "=" in item)
    return pairs.get(str(value), value)


def _image(value: Any, kind: str) -> Any:
    if not isinstance(value, ImageInput | VideoInput):
        raise MapError(f"the `{kind}` filter applies to {', '.join(MEDIA_FIELDS)} only")
    if kind == "data_url":
        return value.data_url()
    if kind == "base64":
        return base64.b64encode(value.data).decode()
    return value.mime


FILTERS: dict[str, Filter] = {
    "str": lambda v, _: str(v),
    "int": lambda v, _: int(v),
    "float": lambda v, _: float(v),
    "bool": lambda v, _: bool(v),
    "lower": lambda v, _: str(v).lower(),
    "suffix": lambda v, arg: f"{v}{arg}",
    "map": _map,
    "data_url": lambda v, _: _image(v, "data_url"),
    "base64": lambda v, _: _image(v, "base64"),
    "mime": lambda v, _: _image(v, "mime"),
}
FIELDS = frozenset(
    {f.name for f in dataclasses.fields(GenerationSpec)} | {*MEDIA_FIELDS, "size", "frames"}
)


@dataclass(frozen=True)
class _Expr:
    name: str
    steps: tuple[tuple[Filter, str], ...]
    mode: str | None  # only:<mode>: the field is sent in this mode only


@cache
def _compile(expr: str) -> _Expr:
    name, *steps = (part.strip() for part in expr.split("|"))
    if name not in FIELDS:
        raise MapError(f"unknown field `{name}` (fields: {', '.join(sorted(FIELDS))})")
    compiled = []
    mode = None
    for step in steps:
        fname, _, arg = step.partition(":")
        if fname == "only":
            if arg not in MODES:
                raise MapError(f"`only:` takes a mode ({', '.join(MODES)}), not {arg!r}")
            mode = arg
            continue
        if fname not in FILTERS:
            raise MapError(f"unknown filter `{fname}` (filters: {', '.join(FILTERS)}, only)")
        compiled.append((FILTERS[fname], arg))
    return _Expr(name, tuple(compiled), mode)


def _field(spec: GenerationSpec, media: Mapping[str, Media | None], name: str) -> Any:
    if name in MEDIA_FIELDS:
        return media[name]
    if name == "size":
        return f"{spec.width}x{spec.height}"
    if name == "frames":
        return spec.num_frames
    return getattr(spec, name)


def translate(
    route: Route,
    spec: GenerationSpec,
    image: ImageInput | None,
    *,
    end_image: ImageInput | None = None,
    source_video: VideoInput | None = None,
) -> dict[str, Any]:
    """The provider's input for this request. Dotted names ("parameters.aspectRatio")
    build nested objects. With a source video, the fields that read `image` are left out."""
    media: dict[str, Media | None] = {
        "image": image, "end_image": end_image, "source_video": source_video
    }  # fmt: skip
    body: dict[str, Any] = {}
    for key, expr in route.input.items():
        if isinstance(expr, str):
            if expr.startswith("="):
                value: Any = expr[1:]
            else:
                compiled = _compile(expr)
                if compiled.mode is not None and compiled.mode != spec.mode:
                    continue
                if compiled.name == "image" and source_video is not None:
                    continue
                value = _field(spec, media, compiled.name)
                if value is None or value == "":
                    continue
                for func, arg in compiled.steps:
                    value = func(value, arg)
        else:
            value = expr
        target = body
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return body


def job_for(
    route: Route,
    spec: GenerationSpec,
    image: ImageInput | None,
    *,
    end_image: ImageInput | None = None,
    source_video: VideoInput | None = None,
) -> Job:
    """The job for `spec` on `route`; with an end image, on the route's end-image endpoint
    when it has one for this mode (chosen by the spec, so that the polls after the submit,
    which load no images, name the same upstream model)."""
    variant = route.with_end_image
    wants_end = end_image is not None or bool(spec.end_image_url)
    if wants_end and variant is not None and spec.mode in variant.upstream:
        route = variant
    return Job(
        spec=spec,
        route=route,
        upstream_model=route.upstream[spec.mode],
        input=translate(route, spec, image, end_image=end_image, source_video=source_video),
        image=image,
        end_image=end_image,
        source_video=source_video,
    )
