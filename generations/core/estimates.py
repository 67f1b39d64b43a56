"""What a request would cost and how long it would take, before anything is submitted:
`POST /api/v1/estimate` and the Generate form's live estimate ask here. Nothing is written.

The US dollars are the price table's on the route that would serve it now (routing/prices);
the credits are what a team that pays in credits would be charged. The time is the wait for
the generations ahead of it (every team's tasks handed to the workers, and this team's own
waiting line) plus its own run, both at this server's recent times for the model and
resolution (core/reports.typical_seconds, as the dashboard's live strip counts), else the
route's `typical_s`, else a default."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Q

from generations import catalog
from generations.core import quotas, reports
from generations.models import Generation, Team
from generations.rendering.hosted.routes import DEFAULT_TYPICAL_S
from generations.routing import prices
from generations.spec import GenerationSpec
from generations.vocabulary import Lane, Status


@dataclass(frozen=True)
class Estimate:
    credits: Decimal
    usd: Decimal
    eta_s: int
    provider: str  # the engine or provider that would serve it ("" when none)
    model: str  # the served model
    priced: bool  # False: a hosted route without a price (costed at $0)
    ahead: int  # generations before it
    budget_usd: Decimal | None
    spent_usd: Decimal

    @property
    def within_budget(self) -> bool:
        return self.budget_usd is None or self.spent_usd + self.usd <= self.budget_usd

    def as_json(self) -> dict[str, object]:
        return {
            "credits": str(self.credits),
            "usd": str(self.usd),
            "eta_s": self.eta_s,
            "provider": self.provider or None,
            "model": self.model,
            "priced": self.priced,
            "queue_ahead": self.ahead,
            "budget": None
            if self.budget_usd is None
            else {
                "monthly_budget_usd": str(self.budget_usd),
                "spent_usd": str(self.spent_usd),
                "within_budget": self.within_budget,
            },
        }


def _workers() -> int:
    configured = settings.Q_CLUSTER.get("workers", 1)
    return max(1, configured if isinstance(configured, int) else 1)


def ahead_of_new(team: Team) -> int:
    """How many generations a new interactive submit of `team` would wait behind: every
    task handed to the broker, and the team's own interactive work still waiting."""
    return Generation.objects.filter(
        Q(status=Status.IN_QUEUE)
        | Q(status=Status.PENDING, team=team, lane__lte=Lane.INTERACTIVE.value)
    ).count()


def estimate(*, team: Team, spec: GenerationSpec, test_mode: bool) -> Estimate:
    model = catalog.get_model(spec.model)
    assert model is not None  # build_spec checked it
    quoted = prices.quote(spec, test_mode=test_mode)
    credits = (
        Decimal(0)
        if test_mode
        else quotas.charge_for(team, catalog.credits_for(model, spec.duration, spec.resolution))
    )
    usual = reports.typical_seconds(spec.model, spec.resolution)
    if usual is None:
        usual = round(quoted.route.typical_s if quoted.route else DEFAULT_TYPICAL_S)
    ahead = ahead_of_new(team)
    budget = None if test_mode else team.plan.monthly_budget_usd
    return Estimate(
        credits=credits,
        usd=quoted.usd,
        eta_s=max(1, usual * (1 + ahead // _workers())),
        provider=quoted.provider,
        model=spec.model,
        priced=quoted.priced,
        ahead=ahead,
        budget_usd=budget,
        spent_usd=quotas.month_spent(team) if budget is not None else Decimal(0),
    )
