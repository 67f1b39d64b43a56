"""Migrations run on a fresh database and over old rows, whatever the models look like now:
no migration reads a live model (whose columns are the latest migration's)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from generations.models import DEFAULT_PLAN_NAME, Plan, Team

pytestmark = pytest.mark.django_db(transaction=True)

APP = "generations"


def _migrate(target: str) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([(APP, target)])
    executor.loader.build_graph()
    return executor


def _latest() -> str:
    executor = MigrationExecutor(connection)
    leaves = [name for app, name in executor.loader.graph.leaf_nodes() if app == APP]
    assert len(leaves) == 1
    return leaves[0]


def test_teams_from_before_plans_get_the_default_plan_through_the_historical_models() -> None:
    """0005 gives existing teams the default plan. Its default used to call
    Plan.default(), the live model: once Plan gained a column (0018's monthly budget),
    that query named a column the table did not have yet, and migrate failed."""
    latest = _latest()
    executor = _migrate("0004_sharing")
    old_team = executor.loader.project_state((APP, "0004_sharing")).apps.get_model(APP, "Team")
    team_pk = old_team.objects.create(name="Before plans", personal=False).pk
    _migrate(latest)
    team = Team.objects.select_related("plan").get(pk=team_pk)
    assert team.plan.name == DEFAULT_PLAN_NAME
    assert team.plan.monthly_budget_usd is None
    assert Plan.objects.filter(name=DEFAULT_PLAN_NAME).count() == 1


def test_a_fresh_database_migrates_from_zero() -> None:
    latest = _latest()
    _migrate("0001_initial")
    _migrate(latest)
    assert Plan.default().name == DEFAULT_PLAN_NAME
