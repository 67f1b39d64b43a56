"""Usage rollups: a team's usage per closed day, so that a month's report and the API list's
`total` read a few hundred summary rows and today's rows, not the team's
whole ledger and every generation it ever made.

A day (UTC) is rolled up once it ended more than `SETTLE` ago and every generation the
team created up to it is final: its ledger rows, outcome and recorded cost can no longer
change. (Rows are written with the time they are written at; the hour covers one written
just before midnight by a transaction that commits after it.) Rolling is lazy: whoever
reads a team's usage rolls its days that are due first (`roll`), one transaction per team
under a lock on its `UsageRolled` mark, so the first read of a day pays for one day of
aggregation and the rest read summaries. Readers split at the mark they read (`until`):
summaries before it, live rows from it, so a roll committing meanwhile neither doubles nor
drops anything.

What changes a closed day afterwards keeps its summary right: deleting a generation takes
it out (`forget`). Rows written with an old date by hand (`seed_demo` rolls its own teams
after filling them) would not be seen once their day is rolled."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate

from generations.models import Generation, Team, UsageDay, UsageEvent, UsageRolled
from generations.vocabulary import NOT_FINAL_STATUSES, Status

# How long a day is left open after it ends: longer than any transaction that writes usage.
SETTLE = timedelta(hours=1)
EPOCH = date(1970, 1, 1)


# What a day's (or a live span's) generations sum to: how many, how they ended, seconds of
# video made, recorded costs. The summaries store these; reports add them up.
_DONE = Q(status=Status.COMPLETED)
_COSTED = Q(cost_usd__isnull=False) & ~Q(engine="")
OUTCOMES = {
    "n": Count("id"),
    "n_done": Count("id", filter=_DONE),
    "n_failed": Count("id", filter=Q(status=Status.FAILED)),
    "secs": Sum("duration", filter=_DONE),
    "n_costed": Count("id", filter=_COSTED),
    "cost": Sum("cost_usd", filter=_COSTED),
}


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def closed_before(now: datetime | None = None) -> date:
    """The first day that cannot be rolled up yet."""
    return ((now or datetime.now(UTC)) - SETTLE).astimezone(UTC).date()


def until(team: Team) -> date | None:
    """The day the team's summaries stop at (every day before it is rolled up)."""
    return UsageRolled.objects.filter(team=team).values_list("until", flat=True).first()


def roll(team: Team, now: datetime | None = None) -> date | None:
    """Roll up the team's days that are due; the mark after it (None: nothing to roll)."""
    limit = closed_before(now)
    mark = until(team)
    if mark is not None and mark >= limit:
        return mark
    # A generation still running holds its day and every day after it open.
    waiting = (
        Generation.objects.filter(
            team=team, status__in=NOT_FINAL_STATUSES, created_at__lt=midnight(limit)
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    end = min(limit, waiting.astimezone(UTC).date()) if waiting is not None else limit
    if mark is not None and end <= mark:
        return mark
    UsageRolled.objects.get_or_create(team=team, defaults={"until": EPOCH})
    with transaction.atomic():
        row = UsageRolled.objects.select_for_update().get(team=team)
        if row.until >= end:
            return row.until  # another reader rolled it meanwhile
        start = row.until
        UsageDay.objects.bulk_create(_summaries(team, start, end), batch_size=1000)
        row.until = end
        row.save(update_fields=["until"])
    return end


def _summaries(team: Team, start: date, end: date) -> list[UsageDay]:
    span = Q(created_at__lt=midnight(end))
    if start > EPOCH:
        span &= Q(created_at__gte=midnight(start))
    day = TruncDate("created_at", tzinfo=UTC)
    made = []
    events = (
        UsageEvent.objects.filter(span, team=team)
        .annotate(day=day)
        .values("month", "day", "user_id", "api_key_id", "model")
        .annotate(units_sum=Sum("units"), usd_sum=Sum("usd"))
        .order_by()
    )
    for row in events:
        made.append(UsageDay(
            team=team, month=row["month"], day=row["day"], user_id=row["user_id"],
            api_key_id=row["api_key_id"], model=row["model"], ledger=True,
            units=row["units_sum"] or 0,
            usd=row["usd_sum"] or Decimal(0),
        ))  # fmt: skip
    gens = (
        Generation.objects.filter(span, team=team)
        .annotate(day=day)
        .values("day", "user_id", "api_key_id", "model", "engine", "test_mode")
        .annotate(**OUTCOMES)
        .order_by()
    )
    for row in gens:
        made.append(UsageDay(
            team=team, month=row["day"].strftime("%Y-%m"), day=row["day"],
            user_id=row["user_id"], api_key_id=row["api_key_id"], model=row["model"],
            engine=row["engine"], test_mode=row["test_mode"], submitted=row["n"],
            completed=row["n_done"], failed=row["n_failed"], seconds=row["secs"] or 0,
            costed=row["n_costed"], cost_usd=row["cost"] or Decimal(0),
        ))  # fmt: skip
    return made


def forget(generation: Generation) -> None:
    """Take a generation about to be deleted out of its day's summary, if rolled up."""
    mark = until(generation.team)
    created = generation.created_at.astimezone(UTC).date()
    if mark is None or created >= mark:
        return  # read live
    completed = generation.status == Status.COMPLETED
    costed = generation.cost_usd is not None and generation.engine != ""
    dims: dict[str, object] = {
        "team_id": generation.team_id, "day": created, "user_id": generation.user_id,
        "api_key_id": generation.api_key_id, "model": generation.model,
        "engine": generation.engine, "test_mode": generation.test_mode,
    }  # fmt: skip
    UsageDay.objects.filter(ledger=False, submitted__gt=0, **dims).update(
        submitted=F("submitted") - 1,
        completed=F("completed") - int(completed),
        failed=F("failed") - int(generation.status == Status.FAILED),
        seconds=F("seconds") - (generation.duration if completed else 0),
        costed=F("costed") - int(costed),
        cost_usd=F("cost_usd") - (generation.cost_usd if costed and generation.cost_usd else 0),
    )  # fmt: skip


def generation_count(team: Team) -> int:
    """Every generation the team has (the API list's `total`): summaries, then live rows."""
    mark = roll(team)
    live = Generation.objects.filter(team=team)
    if mark is None:
        return live.count()
    rolled = UsageDay.objects.filter(team=team, day__lt=mark).aggregate(n=Sum("submitted"))["n"]
    return int(rolled or 0) + live.filter(created_at__gte=midnight(mark)).count()
