"""Takes: a batch is the cross product of prompts, models and seeds (or `count` variations
with fresh seeds), at most MAX_ITEMS generations, admitted or refused as a whole
(CONTRACT 7). Every surface that makes batches (the API, the dashboard) comes here.

Each item is an ordinary generation linked to its batch, charged as one generation, in the
batch lane of its team's waiting line (core/fairshare.py: a team's single generations go
before its batch items; other teams take turns with it)."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from generations.core import lifecycle, submissions
from generations.core.submissions import InputImage
from generations.core.validation import MAX_PROMPT_CHARS, MAX_SEED, build_spec, resolve_model
from generations.errors import ApiError, invalid
from generations.models import ApiKey, Batch, Generation, Team, User
from generations.spec import GenerationSpec
from generations.vocabulary import FINAL_STATUSES

MAX_ITEMS = 64
MAX_COUNT = MAX_ITEMS
# The request fields that make a batch (the rest are the generate fields every item shares).
LIST_FIELDS = ("prompts", "models", "seeds")


@dataclass(frozen=True)
class BatchPlan:
    """A batch request, validated: one spec per item, in grid order (prompt, then model,
    then seed)."""

    specs: list[GenerationSpec]


def _list(data: Mapping[str, object], name: str, single: str) -> list[object] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid(name, f"`{name}` must be a list.")
    if not value:
        raise invalid(name, f"`{name}` is empty: give at least one, or leave it out.")
    if data.get(single) not in (None, "", -1):
        raise invalid(name, f"Give `{single}` or `{name}`, not both.")
    if len(value) > MAX_ITEMS:
        raise invalid(name, f"`{name}` holds {len(value)} entries; a batch has at most "
                      f"{MAX_ITEMS} items.", "batch_too_large")  # fmt: skip
    return value


def _prompts(data: Mapping[str, object]) -> list[str | None]:
    values = _list(data, "prompts", "prompt")
    if values is None:
        return [None]  # the request's own `prompt` (build_spec checks it)
    prompts: list[str | None] = []
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise invalid("prompts", f"`prompts[{i}]` must be a non-empty string.")
        if len(value.strip()) > MAX_PROMPT_CHARS:
            raise invalid("prompts", f"`prompts[{i}]` must be at most {MAX_PROMPT_CHARS} "
                          "characters.")  # fmt: skip
        prompts.append(value.strip())
    return prompts


def _models(data: Mapping[str, object]) -> list[str | None]:
    values = _list(data, "models", "model")
    if values is None:
        return [None]
    models: list[str | None] = []
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise invalid("models", f"`models[{i}]` must be a model key (a string).")
        key = value.strip()
        resolve_model(key, "models")  # an alias is served by its target (build_spec)
        if key in models:
            raise invalid("models", f"Model {key!r} is listed twice in `models`.")
        models.append(key)
    return models


def _seeds(data: Mapping[str, object]) -> list[int | None]:
    values = _list(data, "seeds", "seed")
    count = data.get("count")
    if values is None:
        if count in (None, ""):
            return [None]
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
            raise invalid("count", f"`count` must be an integer between 1 and {MAX_COUNT}.")
        if count > 1 and data.get("seed") not in (None, "", -1):
            raise invalid("count", "`count` makes variations with fresh seeds: leave `seed` "
                          "out, or give the seeds as `seeds`.")  # fmt: skip
        return [None] * count
    if count not in (None, ""):
        raise invalid("count", "Give `seeds` or `count`, not both (each seed is one take).")
    seeds: list[int | None] = []
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
            raise invalid("seeds", f"`seeds[{i}]` must be an integer between 0 and {MAX_SEED}.")
        if value in seeds:
            raise invalid("seeds", f"Seed {value} is listed twice in `seeds`.", "duplicate_seed")
        seeds.append(value)
    return seeds


def plan(data: Mapping[str, object], *, test_mode: bool) -> BatchPlan:
    """Validate a batch request: 400 naming the field for bad lists, too many items, an
    unknown model (named), duplicate seeds, or any generate field that fails for an item."""
    prompts, models, seeds = _prompts(data), _models(data), _seeds(data)
    total = len(prompts) * len(models) * len(seeds)
    if total > MAX_ITEMS:
        sizes = {"prompts": len(prompts), "models": len(models),
                 "seeds" if "seeds" in data else "count": len(seeds)}  # fmt: skip
        biggest = max(sizes, key=lambda name: sizes[name])
        shape = " × ".join(f"{n} {name}" for name, n in sizes.items() if n > 1)
        raise invalid(biggest, f"A batch has at most {MAX_ITEMS} items; {shape} make {total}.",
                      "batch_too_large")  # fmt: skip
    base = {k: v for k, v in data.items() if k not in (*LIST_FIELDS, "count")}
    specs: list[GenerationSpec] = []
    for prompt in prompts:
        for model in models:
            item = dict(base)
            if prompt is not None:
                item["prompt"] = prompt
            if model is not None:
                item["model"] = model
            try:
                first = build_spec(item, test_mode=test_mode)
            except ApiError as exc:
                if model is not None and exc.field == "model":
                    exc.field = "models"  # the model at fault came from the list
                elif model is not None:
                    exc.message = f"{exc.message} (`models` lists {model!r}.)"
                raise
            for seed in seeds:
                if seed is None and len(seeds) > 1:
                    seed = secrets.randbelow(MAX_SEED + 1)  # `count`: a fresh seed per take
                # One seed per item: the request's own `seed` (or build_spec's random one).
                specs.append(first if seed is None else dataclasses.replace(first, seed=seed))
    return BatchPlan(specs=specs)


def batch_create(
    *,
    team: Team,
    user: User,
    specs: Sequence[GenerationSpec],
    api_key: ApiKey | None = None,
    source: str = "api",
    input_image: InputImage | None = None,
    end_image: InputImage | None = None,
    webhook_url: str = "",
    public_base: str = "",
    title: str = "",
) -> tuple[Batch, list[Generation], int]:
    """Admit every item or none (429/402 with nothing created): (batch, items, usage)."""
    test_mode = bool(api_key and api_key.is_test)
    submissions.screen(team=team, user=user, specs=list(specs), test_mode=test_mode)
    batch = Batch(
        team=team, user=user, api_key=api_key, source=source, test_mode=test_mode,
        title=(title or specs[0].prompt)[:200], webhook_url=webhook_url,
        public_base=public_base[:300],
    )  # fmt: skip
    items = [
        submissions.prepare(
            team=team,
            user=user,
            spec=spec,
            api_key=api_key,
            source=source,
            public_base=public_base,
            batch=batch,
        )  # fmt: skip
        for spec in specs
    ]
    usage = submissions.admit(
        team=team, user=user, items=items, input_image=input_image, batch=batch,
        end_image=end_image,
    )  # fmt: skip
    return batch, [gen for gen, _ in items], usage


def batch_cancel(*, batch: Batch) -> int:
    """Cancel every item that has not finished (waiting ones never start, running ones stop
    at their next frame), each refunded; how many were canceled or asked to stop."""
    canceled = 0
    for gen in batch.items.exclude(status__in=FINAL_STATUSES).order_by("pk"):
        canceled += lifecycle.cancel(generation=gen)
    return canceled


def batch_pick(*, batch: Batch, generation: Generation | None) -> None:
    """Mark one take as the batch's pick (None clears it)."""
    if generation is not None and generation.batch_id != batch.pk:
        raise invalid("generation_id", f"{generation.generation_id} is not an item of "
                      f"{batch.batch_id}.")  # fmt: skip
    Batch.objects.filter(pk=batch.pk).update(pick=generation)
    batch.pick = generation
