"""The lifecycle (generations/core/lifecycle.py): every status transition of a generation,
from the statuses its table allows only, with its ledger effect; and nothing else in the
code writes a generation's status."""

from __future__ import annotations

import ast
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from generations.core import lifecycle
from generations.models import Generation, UsageEvent
from generations.vocabulary import Status
from tests.conftest import Account

ROOT = Path(__file__).resolve().parent.parent
BODY = {"model": "local", "prompt": "a lantern on a pier", "duration": 1, "resolution": "480p"}
CLAIM = "c" * 32


def ledger(gen: Generation) -> list[str]:
    return sorted(UsageEvent.objects.filter(generation=gen).values_list("kind", flat=True))


def at(owner: Account, status: Status, **fields: Any) -> Generation:
    """A charged generation put straight into `status` (a test's shortcut, not a transition)."""
    gen_id = owner.client().post("/api/v1/generate", BODY).json()["generation_id"]
    Generation.objects.filter(generation_id=gen_id).update(status=status, claim=CLAIM, **fields)
    return Generation.objects.get(generation_id=gen_id)


# Each transition, done the way its callers do it, and what it must leave in the ledger.
MOVES: dict[str, Callable[[Generation], object]] = {
    "queue": lambda g: lifecycle.mark_queued(generation=g),
    "claim": lambda g: lifecycle.claim(g.pk),
    "requeue": lambda g: lifecycle.requeue(generation=g, now=timezone.now()),
    "complete": lambda g: lifecycle.complete(generation=g, claim=CLAIM, video="videos/v.mp4"),
    "fail": lambda g: lifecycle.fail(generation=g, code="engine_error", message="boom"),
    "cancel": lambda g: lifecycle.cancel(generation=g),
    "stop": lambda g: lifecycle.stop(generation=g, claim=CLAIM),
    "hold": lambda g: lifecycle.hold(generation=g),
}
LEDGER = {"": ["charge"], "settle": ["charge", "settle"], "refund": ["charge", "refund"]}


def test_the_table_names_every_transition_once() -> None:
    assert [t.name for t in lifecycle.TRANSITIONS] == list(MOVES)
    assert all(t.sources and t.target in Status for t in lifecycle.TRANSITIONS)


@pytest.mark.parametrize("transition", lifecycle.TRANSITIONS, ids=lambda t: t.name)
@pytest.mark.parametrize("start", list(Status), ids=str)
def test_a_transition_moves_only_from_its_sources_with_its_ledger_effect(
    owner: Account, transition: lifecycle.Transition, start: Status
) -> None:
    # What each transition also needs of the row to apply: a stale heartbeat (a claim of a
    # row in progress), the cancel flag (a stop).
    stale = timezone.now() - timedelta(hours=1)
    gen = at(owner, start, heartbeat_at=stale, cancel_requested=transition.name == "stop")
    MOVES[transition.name](gen)
    gen.refresh_from_db()
    if start in transition.sources:
        assert gen.status == transition.target
        assert ledger(gen) == LEDGER[transition.ledger]
    else:
        # A cancel of a running job only raises the flag: its run stops it (`stop`).
        assert gen.status == start
        assert ledger(gen) == ["charge"]


def test_a_refund_is_given_once_however_often_it_is_asked(owner: Account) -> None:
    gen = at(owner, Status.IN_PROGRESS)
    assert lifecycle.fail(generation=gen, code="a", message="first")
    assert not lifecycle.fail(generation=gen, code="b", message="second")
    assert not lifecycle.refund(generation=gen)
    assert ledger(gen) == ["charge", "refund"]


SEQUENCES = ROOT / "generations/core/sequences.py"


def _root_name(node: ast.AST) -> str:
    """The name a call chain starts from (`Sequence` in `Sequence.objects.filter().update`)."""
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def test_only_the_lifecycle_writes_a_generation_status() -> None:
    """No `status=` of the shared vocabulary in a write (update, create...) and no
    `gen.status =` assignment anywhere in generations/ but core/lifecycle.py (and a
    Sequence row's own status in core/sequences.py, whose shots move through lifecycle)."""
    writes = ("update", "create", "get_or_create", "update_or_create", "bulk_update")
    found = []
    for path in (ROOT / "generations").rglob("*.py"):
        if "migrations" in path.parts or path == ROOT / "generations/core/lifecycle.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in writes:
                for keyword in node.keywords:
                    if keyword.arg == "status" and _names_a_generation_status(keyword.value):
                        if path == SEQUENCES and _root_name(node.func) == "Sequence":
                            continue  # a sequence's own status, moved only there
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for part in target.elts if isinstance(target, ast.Tuple) else [target]:
                        if _is_a_generations_status(part):
                            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def _is_a_generations_status(target: ast.expr) -> bool:
    """`gen.status`, `generation.status`...: not an error's or a delivery's status."""
    return (
        isinstance(target, ast.Attribute)
        and target.attr == "status"
        and isinstance(target.value, ast.Name)
        and "gen" in target.value.id
    )


def _names_a_generation_status(value: ast.expr) -> bool:
    text = ast.unparse(value)
    return (
        "Generation.Status" in text
        or text.startswith("Status.")
        or text in {repr(s.value) for s in Status}
    )
