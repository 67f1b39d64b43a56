"""Provenance (CONTRACT 8): every finished video says, verifiably, that it is AI-made.

Two layers, as the EU AI Act's Code of Practice expects: a signed C2PA manifest in the MP4
(media/c2pa_manifest.py, signed with ops/signing.py's credentials) and an invisible
watermark in the frames (media/watermark.py), whose random payload is this generation's
`mark`: the lookup from a video back to its generation, which says nothing by itself.

The worker marks the frames as it encodes (the mark comes with the render context: every
engine encodes through Mp4Writer), then signs the finished file before it is stored.
`verify` reads both back from any upload."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from generations import catalog
from generations.media import c2pa_manifest, watermark
from generations.models import ApiKey, Generation
from generations.ops import signing

MARK_TRIES = 8
DEFAULT_LABEL = "AI-generated"


def mark_for(generation: Generation) -> watermark.Mark:
    """The generation's watermark payload, drawn once (a random number no other generation
    holds: the unique column is the lookup table)."""
    if generation.mark is not None:
        return watermark.Mark(generation.mark)
    for _ in range(MARK_TRIES):
        payload = secrets.randbits(watermark.PAYLOAD_BITS)
        try:
            with transaction.atomic():
                taken = Generation.objects.filter(pk=generation.pk, mark__isnull=True).update(
                    mark=payload
                )
        except IntegrityError:
            continue  # another generation holds that number: draw again
        if not taken:  # drawn meanwhile by another run of the same generation
            drawn = Generation.objects.values_list("mark", flat=True).get(pk=generation.pk)
            assert drawn is not None  # only ever set, never cleared
            payload = drawn
        generation.mark = payload
        return watermark.Mark(payload)
    raise RuntimeError("could not draw a free watermark payload")


def visible_label() -> str:
    """The corner label burnt into every frame (VIDEOGEN_VISIBLE_LABEL: off when empty; "on"
    or "true" for the default words, else the operator's own, at most 40 characters)."""
    value = str(settings.VIDEOGEN_VISIBLE_LABEL).strip()
    if value.lower() in ("", "0", "off", "false", "no"):
        return ""
    if value.lower() in ("1", "on", "true", "yes"):
        return DEFAULT_LABEL
    return value[:40]


def source_type(model_key: str, engine: str) -> str:
    """The IPTC digital source type (catalog.digital_source_type, which pages that must not
    load this module's media stack ask directly)."""
    return catalog.digital_source_type(model_key, engine)


def sign(
    path: Path,
    *,
    model: str,
    engine: str,
    title: str,
    ingredients: tuple[Path, ...] = (),
    parent_manifest: Path | None = None,
) -> None:
    """Sign the finished MP4 at `path` in place: created now, by this model, from these
    ingredients (an extension's source, a sequence's shots, an export's video); a provider's
    original file that carries its own manifest is kept as the parent ingredient."""
    claim = c2pa_manifest.Claim(
        generator=signing.generator(),
        model=model,
        digital_source_type=source_type(model, engine),
        created=timezone.now(),
        title=title[:200],
        ingredients=ingredients,
        parent_manifest=parent_manifest,
    )
    c2pa_manifest.sign(path, path, claim, signing.credentials())


def has_manifest(path: Path) -> bool:
    """A provider's file that arrived with its own C2PA manifest."""
    return c2pa_manifest.read(path).present


@dataclass(frozen=True)
class Verdict:
    """`c2pa` and `watermark` are the API's answer; `signer` (the signing certificate's
    organisation) and `development` (signed by a videogen development chain, trusted by no
    one) are for the dashboard's words."""

    c2pa: dict[str, Any]
    watermark: dict[str, Any]
    signer: str | None = None
    development: bool = False


def verify(path: Path, *, key: ApiKey | None = None, teams: Collection[int] = ()) -> Verdict:
    """What an uploaded video carries: its C2PA manifest (present, valid, generator, digital
    source type, model) and our watermark (found, ours, and the generation's id when the
    caller's key belongs to the generation's team, or `teams`, a dashboard user's team ids,
    include it)."""
    # No trust anchors of our own: the development chain must read as untrusted (it is),
    # and an operator's certificate is trusted by what the verifier trusts, not by us.
    report = c2pa_manifest.read(path)
    c2pa = {
        "present": report.present,
        "valid": report.valid,
        "trusted": report.trusted,
        "generator": report.generator,
        "digital_source_type": report.digital_source_type,
        "model": report.model,
        "ingredients": report.ingredients,
        "codes": report.codes,
    }
    found = watermark.detect(path)
    mark: dict[str, Any] = {"found": found.found, "ours": False, "generation_id": None}
    if found.found and found.payload is not None:
        gen = Generation.objects.filter(mark=found.payload).only("generation_id", "team_id")
        owner = gen.first()
        if owner is not None:
            mark["ours"] = True
            if (key is not None and key.team_id == owner.team_id) or owner.team_id in teams:
                mark["generation_id"] = owner.generation_id
    development = report.signer == signing.DEVELOPMENT_ORGANIZATION
    return Verdict(c2pa=c2pa, watermark=mark, signer=report.signer, development=development)
