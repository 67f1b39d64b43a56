"""The database models: one Django app (`generations`), a module per concern. Everything is
re-exported here, where Django and the migrations look for it (`generations.models.User`)."""

from __future__ import annotations

from generations.ids import new_generation_id
from generations.models.accounts import (
    DEFAULT_PLAN_NAME,
    ApiKey,
    Invitation,
    Membership,
    Plan,
    Team,
    User,
    UserManager,
    default_plan_id,
)
from generations.models.generation import Batch, Export, Generation, Sequence, WorkerHeartbeat
from generations.models.idempotency import IdempotencyRecord
from generations.models.rollups import MetricsSnapshot, UsageDay, UsageRolled
from generations.models.routing import ProviderCircuit, ProviderKey, ProviderSlot
from generations.models.usage import MemberMonthlyUsage, MonthlyUsage, UsageEvent
from generations.models.webhooks import WebhookDelivery, WebhookEndpoint

__all__ = [
    "DEFAULT_PLAN_NAME",
    "ApiKey",
    "Batch",
    "Export",
    "Generation",
    "IdempotencyRecord",
    "Invitation",
    "MemberMonthlyUsage",
    "Membership",
    "MetricsSnapshot",
    "MonthlyUsage",
    "Plan",
    "ProviderCircuit",
    "ProviderKey",
    "ProviderSlot",
    "Sequence",
    "Team",
    "UsageDay",
    "UsageEvent",
    "UsageRolled",
    "User",
    "UserManager",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WorkerHeartbeat",
    "default_plan_id",
    "new_generation_id",
]
