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
from django_q.conf import Conf
from django_q.tasks import async_task

from generations import catalog
from generations.core import idempotency, lifecycle, quotas, safety
from generations.core.accounts import CREATORS, require_role
from generations.core.validation import DATA_URL_MARK, shorten_image_url
from generations.db.locks import sqlite_write_lock
from generations.errors import ApiError
from generations.media import images
from generations.models import ApiKey, Generation, IdempotencyRecord, Team, UsageEvent, User
from generations.net import fetch
from generations.rendering import registry
from generations.spec import GenerationSpec

log = logging.getLogger(__name__)

# The django-q2 task that runs a generation (generations/tasks/__init__.py). Named, not
# imported: the jobs call into this layer, not the other way round.
RUN_TASK = "generations.tasks.generation_run"


@dataclass(frozen=True)
class InputImage:
    data: bytes
    extension: str


def input_image_load(image_url: str) -> InputImage:
    """Fetch (SSRF-safe) or decode the client's image and check it is an image we accept.

    Runs in the request so that a bad image is a 400 naming `image_url`, not a failed job."""
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
        raise ApiError(400, exc.code, exc.message, "image_url") from None
    return InputImage(
        data=data, extension=images.image_extension(images.sniff_format(data) or "PNG")
    )


def input_image_of(generation: Generation) -> InputImage | None:
    """The image a generation was made from, as stored with it (None for text-to-video):
    what a retry or a remix starts from again, never the client's URL fetched anew."""
    if not generation.input_image:
        return None
    with generation.input_image.open("rb") as fh:
        data = fh.read()
    return InputImage(data=data, extension="." + generation.input_image.name.rsplit(".", 1)[-1])


def generation_create(
    *,
    team: Team,
    user: User,
    spec: GenerationSpec,
    api_key: ApiKey | None = None,
    source: str = "api",
    input_image: InputImage | None = None,
    remixed_from: Generation | None = None,
    webhook_url: str = "",
    public_base: str = "",
) -> tuple[Generation, int]:
    """Reserve usage, save the row and enqueue it atomically. Returns (generation, usage)."""
    require_role(team=team, user=user, roles=CREATORS, action="generating videos")
    if spec.enable_safety_checker:
        verdict = safety.screen_text(spec.prompt, spec.audio_prompt)
        if verdict.blocked:
            raise ApiError(
                400,
                "content_policy",
                f"The prompt was refused by the safety checker ({verdict.category}).",
                "prompt",
            )
    test_mode = bool(api_key and api_key.is_test)
    month = quotas.current_month()
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
    cost = Decimal(0) if test_mode else catalog.credits_for(model, spec.duration, spec.resolution)
    values = dataclasses.asdict(spec) | {"image_url": shorten_image_url(spec.image_url)}
    gen = Generation(
        team=team, user=user, api_key=api_key, source=source, test_mode=test_mode,
        remixed_from=remixed_from, webhook_url=webhook_url, public_base=public_base[:300],
        **values,
    )  # fmt: skip
    if input_image is not None:
        # Written before the transaction: the writer lock is held only for the rows.
        gen.input_image.save(
            f"{gen.generation_id}{input_image.extension}",
            ContentFile(input_image.data),
            save=False,
        )
    charged = Decimal(0) if test_mode else quotas.charge_for(team, cost)
    try:
        with sqlite_write_lock(), transaction.atomic():
            gen.save()
            record = idempotency.current_record.get()
            if record is not None:
                IdempotencyRecord.objects.filter(pk=record).update(generation=gen)
            if not test_mode:
                UsageEvent.objects.create(
                    team=team,
                    user=user,
                    api_key=api_key,
                    generation=gen,
                    kind=UsageEvent.Kind.CHARGE,
                    units=1,
                    credits=charged,
                    month=month,
                    model=spec.model,
                )
            if _queue_is_in_this_database():
                # The queue row commits with the generation: one write transaction, and no
                # moment where a saved generation has no task.
                generation_enqueue(generation=gen)
            else:
                transaction.on_commit(lambda: _enqueue_after_commit(gen))
            # Last: the usage rows every submit of this team contends for are locked from
            # here to the commit only (a refusal rolls back everything above).
            if test_mode:
                usage = quotas.month_usage(team, month)
            else:
                usage = quotas.reserve(team, user, month, charged).usage
    except BaseException:
        if gen.input_image:
            gen.input_image.delete(save=False)  # refused (e.g. 429): no orphan file
        raise
    return gen, usage


def _enqueue_after_commit(gen: Generation) -> None:
    """The generation is saved and charged: a broker that is down now (Redis restarting)
    must not turn that into an error. The row stays `pending` and the reaper enqueues it
    once the broker answers again (tasks/reaper.py, VIDEOGEN_PENDING_GRACE_S)."""
    try:
        generation_enqueue(generation=gen)
    except Exception:
        log.warning(
            "the broker refused generation %s; it stays pending and is enqueued again later",
            gen.generation_id,
            exc_info=True,
        )


def _queue_is_in_this_database() -> bool:
    return bool(Conf.ORM) and not Conf.SYNC


def generation_enqueue(*, generation: Generation) -> None:
    """Hand the generation to the workers. Safe to call twice: the run claims the row.

    Diffusers jobs go to the GPU cluster's queue; everything else to the main cluster's,
    named explicitly so that a call made inside a GPU worker does not land in its queue."""
    model = catalog.get_model(generation.model)
    engine = (
        registry.engine_name_for(model, test_mode=generation.test_mode, mode=generation.mode)
        if model
        else None
    )
    gpu = engine == registry.DIFFUSERS
    async_task(
        RUN_TASK,
        generation.pk,
        task_name=f"generation {generation.generation_id}",
        group="generations",
        cluster=settings.VIDEOGEN_GPU_CLUSTER if gpu else Conf.PREFIX,
    )
    lifecycle.mark_queued(generation=generation)


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
        input_image=image, remixed_from=generation if prompt is not None else None,
    )  # fmt: skip
    return gen
