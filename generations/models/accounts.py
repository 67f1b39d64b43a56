"""People, teams, plans, memberships, invitations and API keys."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person; logs in with an e-mail address."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    def __str__(self) -> str:
        return self.email


DEFAULT_PLAN_NAME = "Default"


class Plan(models.Model):
    """What a team may do: monthly generations, premium models, per-member cap, request rate,
    and a monthly budget in US dollars."""

    name = models.CharField(max_length=100, unique=True)
    monthly_limit = models.PositiveIntegerField(default=100)
    premium_allowed = models.BooleanField(default=False)
    member_monthly_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="Generations per member per month; empty = no cap."
    )
    requests_per_minute = models.PositiveIntegerField(default=600)
    monthly_budget_usd = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True,
        help_text="US dollars the team may spend per month at hosted providers; empty = no budget.",
    )  # fmt: skip

    def __str__(self) -> str:
        return self.name

    @classmethod
    def default(cls) -> Plan:
        """The plan new teams get; its numbers come from settings when first created."""
        plan, _ = cls.objects.get_or_create(
            name=DEFAULT_PLAN_NAME,
            defaults={
                "monthly_limit": settings.VIDEOGEN_DEFAULT_MONTHLY_LIMIT,
                "requests_per_minute": settings.VIDEOGEN_DEFAULT_RATE_LIMIT,
            },
        )
        return plan


def default_plan_id() -> int:
    return Plan.default().pk


class Team(models.Model):
    """Owns keys, generations and usage. Every user has a personal team."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    personal = models.BooleanField(default=False)
    plan = models.ForeignKey(Plan, models.PROTECT, default=default_plan_id, related_name="teams")
    # Bumped to rotate the webhook signing secret (derived from SECRET_KEY, never stored).
    webhook_secret_version = models.PositiveIntegerField(default=1)
    # Prepaid credits; None = this team is not billed in credits (only the monthly limit).
    credits = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    # A public gallery of the team's shared videos at /g/<gallery_slug>, when enabled.
    gallery_public = models.BooleanField(default=False)
    gallery_slug = models.SlugField(max_length=40, unique=True, null=True, blank=True)
    # Queue control: while paused, the team's waiting generations stay waiting (the
    # fair-share dispatcher, core/fairshare.py, skips them); running ones finish.
    queue_paused = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    members: models.ManyToManyField[User, Membership] = models.ManyToManyField(
        User, through="Membership", related_name="teams"
    )

    def __str__(self) -> str:
        return self.name

    @property
    def monthly_limit(self) -> int:
        return self.plan.monthly_limit


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"
        VIEWER = "viewer"

    team = models.ForeignKey(Team, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class ApiKey(models.Model):
    """An API key. Only a SHA-256 digest of the secret is stored; it is shown once."""

    team = models.ForeignKey(Team, models.CASCADE, related_name="api_keys")
    user = models.ForeignKey(User, models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16)  # "vg_live_" or "vg_test_"
    last4 = models.CharField(max_length=4)
    digest = models.CharField(max_length=64, unique=True)
    is_test = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.display

    @property
    def display(self) -> str:
        return f"{self.prefix}...{self.last4}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class Invitation(models.Model):
    """An e-mailed link that lets one person join a team with a role. Single use, expiring.

    Only a digest of the link's token is stored."""

    team = models.ForeignKey(Team, models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(
        max_length=10, choices=Membership.Role.choices, default=Membership.Role.MEMBER
    )
    token_digest = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")

    def __str__(self) -> str:
        return f"{self.email} to {self.team}"
