"""Submitting a generation: its input image checked, its usage reserved, the row saved and
its task enqueued, atomically. Every surface (the three APIs, the dashboard) submits here."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from generations import catalog
from generations.core import apikeys, fairshare, idempotency, quotas, safety
from generations.core.accounts import CREATORS, require_role
from generations.core.validation import DATA_URL_MARK, shorten_image_url
from generations.db.locks import sqlite_write_lock
from generations.errors import ApiError
from generations.media import images
from generations.models import (
    ApiKey,
    Batch,
    Generation,
    IdempotencyRecord,
    Sequence,
    Team,
    UsageEvent,
    User,
)
from generations.net import fetch
from generations.rendering import registry
from generations.routing import prices
from generations.spec import GenerationSpec
from generations.vocabulary import Lane

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputImage:
    data: bytes
    extension: str


def input_image_load(image_url: str, field: str = "image_url") -> InputImage:
    """Fetch (SSRF-safe) or decode the client's image and check it is an image we accept.

    Runs in the request so that a bad image is a 400 naming the field, not a failed job."""
    try:
        if image_url[:5].lower() == DATA_URL_MARK:
            data = fetch.parse_data_url(image_url, max_bytes=settings.VIDEOGEN_MAX_IMAGE_BYTES)
        else:
            data = fetch.fetch_image_bytes(
                image_url,
                max_bytes=settings.VIDEOGEN_MAX_IMAGE_BYTES,
                timeout=settings.VIDEOGEN_FETCH_TIMEOUT,
                allow_hosts=fetch.parse_allow_hosts(settings.VIDEOGEN_FETCH_ALLOW_HOSTS),
            )
        images.load_image(data)  # decodes fully: bombs and truncated files fail here
    except (fetch.FetchError, images.ImageError) as exc:
        raise ApiError(400, exc.code, exc.message, field) from None
    return InputImage(
        data=data, extension=images.image_extension(images.sniff_format(data) or "PNG")
    )


def input_image_of(generation: Generation, field: str = "input_image") -> InputImage | None:
    """The image a generation was made from, as stored with it (None for text-to-video;
    `field="end_image"`: its last frame): what a retry or a remix starts from again, never
    the client's URL fetched anew."""
    stored = getattr(generation, field)
    if not stored:
        return None
    with stored.open("rb") as fh:
        data = fh.read()
    return InputImage(data=data, extension="." + stored.name.rsplit(".", 1)[-1])


def generation_create(
    *,
    team: Team,
    user: User,
    spec: GenerationSpec,
    api_key: ApiKey | None = None,
    source: str = "api",
    input_image: InputImage | None = None,
    end_image: InputImage | None = None,
    remixed_from: Generation | None = None,
    extended_from: Generation | None = None,
    webhook_url: str = "",
    public_base: str = "",
) -> tuple[Generation, int]:
    """Reserve usage, save the row and enqueue it atomically. Returns (generation, usage)."""
    test_mode = bool(api_key and api_key.is_test)
    role = apikeys.member_role(api_key) if api_key is not None else None
    screen(team=team, user=user, specs=[spec], test_mode=test_mode, role=role)
    gen, charged = prepare(
        team=team, user=user, spec=spec, api_key=api_key, source=source,
        remixed_from=remixed_from, webhook_url=webhook_url, public_base=public_base,
    )  # fmt: skip
    gen.extended_from = extended_from
    usage = admit(
        team=team, user=user, items=[(gen, charged)], input_image=input_image, end_image=end_image
    )
    return gen, usage


def screen(
    *,
    team: Team,
    user: User,
    specs: list[GenerationSpec],
    test_mode: bool,
    role: str | None = None,
) -> None:
    """What refuses a request before anything is saved: the member's role, the safety
    checker on each prompt, a premium model the plan does not include. `role`: the member's
    role when the caller read it already (with the API key); read here otherwise."""
    if role not in CREATORS:
        require_role(team=team, user=user, roles=CREATORS, action="generating videos")
    seen: set[tuple[str, str]] = set()
    for spec in specs:
        if spec.enable_safety_checker and (spec.prompt, spec.audio_prompt) not in seen:
            seen.add((spec.prompt, spec.audio_prompt))
            verdict = safety.screen_text(spec.prompt, spec.audio_prompt)
            if verdict.blocked:
                raise ApiError(
                    400,
                    "content_policy",
                    f"The prompt was refused by the safety checker ({verdict.category}).",
                    "prompt",
                )
        model = catalog.get_model(spec.model)
        assert model is not None  # build_spec checked it
        if model.premium and not test_mode and not team.plan.premium_allowed:
            raise ApiError(
                403,
                "premium_not_allowed",
                f"Model {model.key!r} is a premium model and this team's plan "
                f"({team.plan.name}) does not include premium models.",
                "model",
            )


def queue_for(model: catalog.ModelInfo | None, *, test_mode: bool, mode: str) -> str:
    """The worker queue a generation runs in: the GPU cluster's for diffusers engines, the
    main cluster's ("") for everything else."""
    engine = registry.engine_name_for(model, test_mode=test_mode, mode=mode) if model else None
    return settings.VIDEOGEN_GPU_CLUSTER if engine == registry.DIFFUSERS else ""


def prepare(
    *,
    team: Team,
    user: User,
    spec: GenerationSpec,
    api_key: ApiKey | None = None,
    source: str = "api",
    remixed_from: Generation | None = None,
    webhook_url: str = "",
    public_base: str = "",
    batch: Batch | None = None,
) -> tuple[Generation, Decimal]:
    """The unsaved row of one generation and the credits it will take (see admit)."""
    test_mode = bool(api_key and api_key.is_test)
    model = catalog.get_model(spec.model)
    assert model is not None  # build_spec checked it
    cost = Decimal(0) if test_mode else catalog.credits_for(model, spec.duration, spec.resolution)
    values = dataclasses.asdict(spec) | {
        "image_url": shorten_image_url(spec.image_url),
        "end_image_url": shorten_image_url(spec.end_image_url),
    }
    gen = Generation(
        team=team, user=user, api_key=api_key, source=source, test_mode=test_mode,
        remixed_from=remixed_from, webhook_url=webhook_url, public_base=public_base[:300],
        batch=batch, lane=Lane.BATCH if batch is not None else Lane.INTERACTIVE,
        queue=queue_for(model, test_mode=test_mode, mode=spec.mode), **values,
    )  # fmt: skip
    return gen, Decimal(0) if test_mode else quotas.charge_for(team, cost)


def admit(
    *,
    team: Team,
    user: User,
    items: list[tuple[Generation, Decimal]],
    input_image: InputImage | None = None,
    batch: Batch | None = None,
    end_image: InputImage | None = None,
    images: list[InputImage | None] | None = None,
    sequence: Sequence | None = None,
) -> int:
    """Save the prepared generations, all or none: each row with its charge, the usage of
    all of them reserved at once (a 429 or 402 rolls everything back). They join their
    team's waiting line, and the fair-share dispatcher hands them to the workers
    (fairshare.on_submit: at once when a worker is free and nobody else waits). Returns
    the team's usage this month, these included."""
    month = quotas.current_month()
    test_mode = items[0][0].test_mode
    # Each item's estimate in US dollars, on the route that would serve it now: recorded on
    # the row and its charge, and reserved against the plan's budget (test keys: $0).
    quotes = [prices.quote(gen.spec(), test_mode=test_mode) for gen, _ in items]
    for (gen, _), quoted in zip(items, quotes, strict=True):
        gen.est_usd = quoted.usd
    # Written before the transaction: the writer lock is held only for the rows. `images`:
    # each item's own first frame (a sequence's shots), else `input_image` for all.
    for index, (gen, _) in enumerate(items):
        first = images[index] if images is not None else input_image
        if first is not None:
            gen.input_image.save(
                f"{gen.generation_id}{first.extension}", ContentFile(first.data), save=False
            )
        if end_image is not None:
            gen.end_image.save(
                f"{gen.generation_id}-end{end_image.extension}",
                ContentFile(end_image.data),
                save=False,
            )
    try:
        with sqlite_write_lock(), transaction.atomic():
            record = idempotency.current_record.get()
            if sequence is not None:
                sequence.save()
                if record is not None:
                    IdempotencyRecord.objects.filter(pk=record).update(sequence=sequence)
            if batch is not None:
                batch.save()
                if record is not None:
                    IdempotencyRecord.objects.filter(pk=record).update(batch=batch)
            for gen, _ in items:
                gen.save()
            if record is not None and batch is None and sequence is None:
                IdempotencyRecord.objects.filter(pk=record).update(generation=items[0][0])
            if not test_mode:
                UsageEvent.objects.bulk_create(
                    UsageEvent(
                        team=team,
                        user=user,
                        api_key=gen.api_key,
                        generation=gen,
                        kind=UsageEvent.Kind.CHARGE,
                        units=1,
                        credits=charged,
                        usd=quoted.usd,
                        provider=quoted.provider,
                        month=month,
                        model=gen.model,
                    )  # fmt: skip
                    for (gen, charged), quoted in zip(items, quotes, strict=True)
                )
            fairshare.on_submit([gen for gen, _ in items], paused=team.queue_paused)
            # Last: the usage rows every submit of this team contends for are locked from
            # here to the commit only (a refusal rolls back everything above).
            if test_mode:
                usage = quotas.month_usage(team, month)
            else:
                total = sum((charged for _, charged in items), Decimal(0))
                total_usd = sum((q.usd for q in quotes), Decimal(0))
                usage = quotas.reserve(
                    team, user, month, total, units=len(items), usd=total_usd
                ).usage
    except BaseException:
        for gen, _ in items:
            for stored in (gen.input_image, gen.end_image):
                if stored:
                    stored.delete(save=False)  # refused (e.g. 429): no orphan file
        raise
    return usage


def generation_again(
    *,
    generation: Generation,
    user: User,
    api_key: ApiKey | None = None,
    source: str = "dashboard",
    prompt: str | None = None,
) -> Generation:
    """A new generation with the same request (same seed and input image): a retry after
    a failure, or, with a new prompt, a remix (recorded as remixed from the original)."""
    image = input_image_of(generation)
    spec = generation.spec()
    if prompt is not None:
        spec = dataclasses.replace(spec, prompt=prompt)
    gen, _ = generation_create(
        team=generation.team, user=user, api_key=api_key, spec=spec, source=source,
        input_image=image, end_image=input_image_of(generation, "end_image"),
        remixed_from=generation if prompt is not None else None,
    )  # fmt: skip
    return gen
