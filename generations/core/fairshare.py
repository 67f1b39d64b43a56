"""Fair share: which waiting generation goes to the workers next.

A submit does not put its task in the broker. Its rows wait in the database (`pending`), as
their team's waiting line, and this dispatcher hands them to the broker a few at a time:
each worker queue (the main cluster's, the GPU cluster's) holds at most
VIDEOGEN_QUEUE_AHEAD tasks not yet taken by a worker. So the broker stays shallow, and the
order in which work starts is decided here, where the teams are known:

- teams take turns: each free place goes to the team with the fewest generations in flight
  (handed over or running on a worker), ties to the team whose oldest waiting item is
  oldest. With every worker busy on team A's batch, team B's next generation is handed over
  as soon as one place frees, ahead of A's waiting items;
- within a team, a single generation (someone at a screen) before the items of a batch
  (vocabulary.Lane), then oldest first;
- a team that paused its queue is skipped: its waiting items stay waiting.

Who calls it: a submit once its transaction commits (so an idle worker starts at once);
a run as soon as it claims its row (its place in the broker is free again); a thread in
every main-cluster worker twice a second (tasks/dispatch.py); the reaper every minute.
Several may run at once: each row is taken by a conditional UPDATE (lifecycle.mark_queued),
so none is handed over twice, and a task handed over twice would still run once (the run
claims its row). A broker that refuses a task (Redis down) gets the row put back
(lifecycle.hold). Nothing is lost in between either: a row taken but never sent is a queued
row whose task is not in the broker, which the reaper enqueues again (tasks/reaper.py)."""

from __future__ import annotations

import contextvars
import heapq
import logging
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Min, Q
from django_q.conf import Conf
from django_q.tasks import async_task

from generations.core import lifecycle
from generations.models import Generation, Team
from generations.vocabulary import Status

log = logging.getLogger(__name__)

# The django-q2 task that runs a generation (generations/tasks/__init__.py). Named, not
# imported: the jobs call into this layer, not the other way round.
RUN_TASK = "generations.tasks.generation_run"

# The queue of a waiting row that must not start yet: a sequence shot that continues from
# the previous shot's last frame (core/sequences.py). No worker queue has this name, so the
# dispatcher never hands it over; `unhold` moves it into its real queue when it may start.
HELD = "~held"

# Set while this thread releases: a task run inline (the broker's sync mode, in tests) that
# claims its row does not start a release of its own inside this one.
_releasing: contextvars.ContextVar[bool] = contextvars.ContextVar("releasing", default=False)


def enqueue(*, generation: Generation) -> None:
    """Put the generation's task in its queue's broker and mark it queued. Safe to call
    twice: the run claims the row. (The reaper calls this for a task the broker lost.)

    Named clusters: a call made inside a GPU worker must not land in the GPU queue."""
    _send(generation)
    lifecycle.mark_queued(generation=generation)


def on_submit(gens: list[Generation], *, paused: bool) -> None:
    """Called in the transaction that saves a submit's generations: what happens to them
    once it commits. The common case costs one small read: the queue has room and nothing
    else is waiting in it, so this generation is the dispatcher's only choice and is handed
    over at once (with the ORM broker, in this very transaction, so that no moment exists
    where it is saved but neither waiting nor queued). A full queue leaves it waiting: the
    run that next takes a task releases it. Otherwise the dispatcher picks, after commit."""
    if Conf.SYNC:
        transaction.on_commit(release_quietly)
        return
    if paused:
        return
    room, others = _room_and_others(gens[0].queue, settings.VIDEOGEN_QUEUE_AHEAD, gens[0].pk)
    if not room:
        return
    if len(gens) > 1 or others:
        transaction.on_commit(release_quietly)
        return
    gen = gens[0]
    if Conf.ORM:
        _hand_over(gen)
    else:
        transaction.on_commit(lambda: _hand_over_quietly(gen))


def unhold(*, generation: Generation, queue: str) -> bool:
    """A held waiting row joins its worker queue's line (the dispatcher runs after commit)."""
    moved = Generation.objects.filter(pk=generation.pk, status=Status.PENDING, queue=HELD).update(
        queue=queue
    )
    if moved:
        generation.queue = queue
        transaction.on_commit(release_quietly)
    return bool(moved)


def team_queue_pause(*, team: Team, paused: bool) -> None:
    """Pause or resume a team's waiting line. While paused, its waiting generations stay
    waiting (release() skips the team) and those already handed over or running finish; on
    resume the dispatcher runs at once (after commit), so the work starts again without
    waiting for the next tick."""
    Team.objects.filter(pk=team.pk).update(queue_paused=paused)
    team.queue_paused = paused
    if not paused:
        transaction.on_commit(release_quietly)


def positions(team_id: int, waiting: list[Generation]) -> dict[int, int]:
    """For each of a team's waiting generations, how many go before it, in one query: the
    tasks already handed to the broker (every team's; queued before it, for one that is
    itself handed over), and, for one still waiting, its own team's waiting generations
    ahead of it in the line (interactive before batch, then oldest first). Other teams'
    waiting work is not counted: teams take turns, so it does not stand in front."""
    if not waiting:
        return {}
    counts: dict[str, Count] = {}
    for gen in waiting:
        if gen.status == Status.IN_QUEUE:
            ahead = Q(status=Status.IN_QUEUE, queued_at__lt=gen.queued_at)
        else:
            ahead = Q(status=Status.IN_QUEUE) | Q(
                Q(lane__lt=gen.lane) | Q(lane=gen.lane, created_at__lt=gen.created_at),
                status=Status.PENDING,
                team_id=team_id,
            )
        counts[f"c{gen.pk}"] = Count("pk", filter=ahead)
    found = Generation.objects.filter(status__in=(Status.PENDING, Status.IN_QUEUE)).aggregate(
        **counts
    )
    return {gen.pk: int(found[f"c{gen.pk}"] or 0) for gen in waiting}


def _room_and_others(queue: str, ahead: int, pk: int) -> tuple[bool, bool]:
    """What a submit asks, in one statement on the `gen_line` index: has this queue room
    (fewer than `ahead` tasks handed to the broker that no worker took yet, counted up to
    `ahead`), and does any generation but `pk` wait in its line?"""
    table = connection.ops.quote_name(Generation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE status = %s "
            "AND queue = %s LIMIT %s) AS handed), "
            f"EXISTS (SELECT 1 FROM {table} WHERE status = %s AND queue = %s AND id <> %s)",
            [Status.IN_QUEUE.value, queue, ahead, Status.PENDING.value, queue, pk],
        )
        handed, others = cursor.fetchone() or (0, False)
    return int(handed) < ahead, bool(others)


def _hand_over(gen: Generation) -> bool:
    """Take the waiting row (only one dispatcher wins it) and send its task; False when
    another took it first. A broker that refuses gets the row put back, and the error
    raised."""
    if not lifecycle.mark_queued(generation=gen):
        return False
    try:
        _send(gen)
    except Exception:
        lifecycle.hold(generation=gen)
        raise
    return True


def _hand_over_quietly(gen: Generation) -> None:
    try:
        _hand_over(gen)
    except Exception:
        log.warning("the broker refused generation %s; it waits and is released later",
                    gen.generation_id, exc_info=True)  # fmt: skip


def release_quietly(*, ahead: int | None = None) -> int:
    """release(), for callers that must not fail because the broker is down (a submit that
    already committed, a run that already claimed): the work waits and a later round
    releases it."""
    try:
        return release(ahead=ahead)
    except Exception:
        log.warning("the broker refused work; it waits and is released later", exc_info=True)
        return 0


def release(*, ahead: int | None = None) -> int:
    """Hand waiting generations to the broker, teams taking turns, until each queue holds
    `ahead` (VIDEOGEN_QUEUE_AHEAD) tasks no worker has taken yet; how many were handed over.
    In the broker's sync mode (tests) everything waiting is run, in the same order."""
    if _releasing.get():
        return 0
    token = _releasing.set(True)
    try:
        return _release(settings.VIDEOGEN_QUEUE_AHEAD if ahead is None else ahead)
    finally:
        _releasing.reset(token)


def _release(ahead: int) -> int:
    # Each query reads the `gen_line` index (status, queue, team, lane, created_at) only.
    handed = dict(
        Generation.objects.filter(status=Status.IN_QUEUE)
        .values_list("queue")
        .annotate(n=Count("pk"))
        .order_by()
    )
    if Conf.SYNC:
        room = dict.fromkeys(queues(), 10**9)
    else:
        room = {queue: ahead - handed.get(queue, 0) for queue in queues()}
    open_queues = [queue for queue, free in room.items() if free > 0]
    if not open_queues:
        return 0  # the usual round under load: every queue is full, one small read
    paused = set(Team.objects.filter(queue_paused=True).values_list("pk", flat=True))
    waiting: dict[str, dict[int, datetime]] = {}
    for queue, team_id, oldest in (
        Generation.objects.filter(status=Status.PENDING, queue__in=open_queues)
        .values_list("queue", "team_id")
        .annotate(oldest=Min("created_at"))
        .order_by()
    ):
        if team_id not in paused:
            waiting.setdefault(queue, {})[team_id] = oldest
    if not waiting:
        return 0
    in_flight = dict(
        Generation.objects.filter(status__in=(Status.IN_QUEUE, Status.IN_PROGRESS))
        .values_list("team_id")
        # A job waiting on its provider (a poll scheduled) holds no worker.
        .annotate(n=Count("pk", filter=Q(next_poll_at__isnull=True)))
        .order_by()
    )
    released = 0
    for queue, line in waiting.items():
        released += _release_queue(queue, line, in_flight, room[queue])
    return released


def queues() -> tuple[str, ...]:
    """The worker queues: the main cluster's ("") and the GPU cluster's (read per call)."""
    return ("", settings.VIDEOGEN_GPU_CLUSTER)


def _release_queue(
    queue: str, line: dict[int, datetime], in_flight: dict[int, int], free: int
) -> int:
    turns = [(in_flight.get(team_id, 0), oldest, team_id) for team_id, oldest in line.items()]
    heapq.heapify(turns)
    released = 0
    while turns and released < free:
        flying, oldest, team_id = heapq.heappop(turns)
        gen = (
            Generation.objects.filter(status=Status.PENDING, team_id=team_id, queue=queue)
            .order_by("lane", "created_at", "pk")
            .only("pk", "generation_id", "queue", "status", "queued_at")
            .first()
        )
        if gen is None:
            continue  # the team's line emptied meanwhile (canceled, or another dispatcher)
        if _hand_over(gen):
            released += 1
            flying += 1
            in_flight[team_id] = flying
        heapq.heappush(turns, (flying, oldest, team_id))
    return released


def _send(gen: Generation) -> None:
    async_task(
        RUN_TASK,
        gen.pk,
        task_name=f"generation {gen.generation_id}",
        group="generations",
        cluster=gen.queue or Conf.PREFIX,
    )
