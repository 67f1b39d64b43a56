"""What a job costs in US dollars: the price table's figure for a spec on a route (the
estimate reserved at submit), and, once a hosted provider is done, the cost recorded (its
billed figure where it reports one, else the table's).

Prices live on the routes (rendering/hosted/routes.py: `usd_per_s`, by resolution and with
audio where the provider prices that way; VIDEOGEN_PRICE_MAP overrides them). Engines of our
own, the procedural `local` and local diffusers pipelines, cost $0: the machine is already
paid for. Amounts are Decimals rounded to 4 places (the ledger's precision)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from generations import catalog
from generations.rendering import registry
from generations.rendering.hosted import audio_routes, providers
from generations.rendering.hosted.routes import Route
from generations.routing import breaker
from generations.spec import GenerationSpec

PLACES = Decimal("0.0001")
ZERO = Decimal("0.0000")
# Where a generation's recorded cost came from (Generation.cost_source).
BILLED = "billed"
PRICE_TABLE = "price_table"


def usd(amount: Decimal) -> Decimal:
    """An amount as the ledger keeps it: 4 places, half up."""
    return amount.quantize(PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Quote:
    """Who would serve a request here and what it would cost: the engine or provider name
    ("" when nothing serves it), the route (hosted providers only) and the US dollars."""

    provider: str
    route: Route | None
    usd: Decimal

    @property
    def priced(self) -> bool:
        """False for a hosted route the operator left without a price (costed at $0)."""
        return self.route is None or self.route.price.known


def route_for_job(route: Route, spec: GenerationSpec) -> Route:
    """The endpoint a job runs on: the route's end-image endpoint when the job has an end
    image and the route has one for its mode (as routes.job_for chooses)."""
    variant = route.with_end_image
    if spec.end_image_url and variant is not None and spec.mode in variant.upstream:
        return variant
    return route


def spec_usd(route: Route | None, spec: GenerationSpec) -> Decimal:
    """The price table's US dollars for `spec` on `route` (None: an engine of our own, $0)."""
    if route is None:
        return ZERO
    price = route_for_job(route, spec).price
    return usd(price.per_second(spec.resolution, spec.add_audio) * spec.duration)


def quote(spec: GenerationSpec, *, test_mode: bool) -> Quote:
    """The estimate of `spec` on whatever serves it here now (test keys: the `local` engine,
    $0). The provider is the first configured route of the model whose circuit is not
    open, as the run picks it."""
    model = catalog.get_model(spec.model)
    name = registry.engine_name_for(model, test_mode=test_mode, mode=spec.mode) if model else None
    if name is None:
        return Quote("", None, ZERO)
    if not registry.is_hosted(name):
        return Quote(name, None, ZERO)
    route = _starting_route(spec)
    if route is None:
        return Quote(name, None, ZERO)
    return Quote(route.provider, route, spec_usd(route, spec) + audio_step_usd(route, spec))


def _starting_route(spec: GenerationSpec) -> Route | None:
    """The route a job would start on now: the model's first configured route for its mode
    whose circuit is not open (the step skips open ones, routing/failover.py), else the
    first."""
    found = [
        route for route in providers.all_routes().get(spec.model, ())
        if spec.mode in route.upstream and providers.configured(route.provider)
    ]  # fmt: skip
    if len(found) > 1 and (shut := breaker.open_providers()):
        return next((route for route in found if route.provider not in shut), found[0])
    return found[0] if found else None


def audio_step_usd(route: Route, spec: GenerationSpec) -> Decimal:
    """The audio step's price, when the job will likely take one (tasks/audio.py): sound
    asked for on a route that neither asks its provider for it nor prices it, with a
    video-to-audio route configured. (A model that makes sound unasked, Sora 2, is then
    quoted a step it will not take; the settle charges what it did.)"""
    native = route.takes("add_audio") or bool(route_for_job(route, spec).price.per_s_audio)
    if not spec.add_audio or native:
        return ZERO
    first = next(iter(audio_routes.configured()), None)
    return first.price_usd(spec.duration) if first is not None else ZERO


def route_of(model: str, provider: str) -> Route | None:
    """The map's route of `model` on `provider` (configured or not), None when none."""
    return next((r for r in providers.all_routes().get(model, ()) if r.provider == provider), None)


@dataclass(frozen=True)
class Cost:
    usd: Decimal
    source: str  # BILLED or PRICE_TABLE


def hosted_cost(spec: GenerationSpec, provider: str, billed_units: Decimal | None = None) -> Cost:
    """What a job served by `provider` cost: the provider's billed units at the route's
    unit price where it reported them (a second's price when the route names no unit
    price), else the price table's figure. Taken from the serving route, which after a
    failover may not be the one estimated at submit."""
    route = route_of(spec.model, provider)
    if route is None:
        return Cost(ZERO, PRICE_TABLE)
    if billed_units is not None and route.price.known:
        price = route_for_job(route, spec).price
        unit = price.per_unit
        if unit is None:
            unit = price.per_second(spec.resolution, spec.add_audio)
        return Cost(usd(unit * billed_units), BILLED)
    return Cost(spec_usd(route, spec), PRICE_TABLE)
