"""Generations in any state and age, for the operations tests (healthz, metrics, retention)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone

from generations.models import Generation, new_generation_id
from generations.ops import signing
from tests.conftest import Account


def submit_and_render(account: Account, capture: Any, **params: Any) -> Generation:
    """A real completed generation: the local engine, run inline (needs sync_tasks)."""
    body = {"model": "local", "prompt": "a lighthouse at dusk", "duration": 1,
            "resolution": "480p", "seed": 3, **params}  # fmt: skip
    with capture(execute=True):
        generation_id = account.client().post("/api/v1/generate", body).json()["generation_id"]
    gen = Generation.objects.get(generation_id=generation_id)
    assert gen.status == Generation.Status.COMPLETED, gen.error_message
    return gen


def clone(
    gen: Generation,
    *,
    took_s: float | None = None,
    finished_at: datetime | None = None,
    **fields: Any,
) -> Generation:
    """A copy of a generation's row (sharing its files' names), with other timings."""
    copy = Generation.objects.get(pk=gen.pk)
    copy.pk = None
    copy.generation_id = new_generation_id()
    copy.request_id = uuid.uuid4()
    copy.share_token = None
    copy.mark = None  # unique: the watermark payload leads to one generation only
    if finished_at is not None or took_s is not None:
        copy.finished_at = finished_at or timezone.now()
        copy.started_at = copy.finished_at - timedelta(seconds=took_s or 1)
    for name, value in fields.items():
        setattr(copy, name, value)
    copy.save()
    return copy


def operator_c2pa_chain(folder: Path) -> tuple[Path, Path, Path]:
    """An operator's C2PA signing files, made the way the development chain is, in `folder`:
    the chain (signing certificate, then CA), the key, and the CA alone."""
    made = signing.development_chain(folder)
    chain = made / "chain.pem"
    chain.write_bytes((made / "signer.pem").read_bytes() + (made / "ca.pem").read_bytes())
    return chain, made / "signer.key", made / "ca.pem"


def operator_c2pa_env(folder: Path) -> dict[str, str]:
    """The settings that make production sign with an operator's certificate."""
    chain, key, _ = operator_c2pa_chain(folder)
    return {"VIDEOGEN_C2PA_CERT": str(chain), "VIDEOGEN_C2PA_KEY": str(key)}
