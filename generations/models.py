"""Accounts, teams, API keys, generations and the usage ledger."""

from __future__ import annotations

import secrets
import string
import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

BASE62 = string.digits + string.ascii_letters


def random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def new_generation_id() -> str:
    # 24 base62 characters = 142 bits: unguessable, so the public video link is safe to share.
    return "gen_" + random_base62(24)


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
    """What a team may do: monthly generations, premium models, per-member cap, request rate."""

    name = models.CharField(max_length=100, unique=True)
    monthly_limit = models.PositiveIntegerField(default=100)
    premium_allowed = models.BooleanField(default=False)
    member_monthly_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="Generations per member per month; empty = no cap."
    )
    requests_per_minute = models.PositiveIntegerField(default=600)

    def __str__(self) -> str:
        return self.name

    @classmethod
    def default(cls) -> Plan:
        """The plan new teams get; its numbers come from settings when first created."""
        from django.conf import settings

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


class Generation(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        IN_QUEUE = "in_queue"
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELED = "canceled"

    FINAL_STATUSES: ClassVar[frozenset[str]] = frozenset(
        {Status.COMPLETED, Status.FAILED, Status.CANCELED}
    )

    class Mode(models.TextChoices):
        TEXT = "text-to-video"
        IMAGE = "image-to-video"

    generation_id = models.CharField(max_length=40, unique=True, default=new_generation_id)
    request_id = models.UUIDField(unique=True, default=uuid.uuid4)
    team = models.ForeignKey(Team, models.CASCADE, related_name="generations")
    user = models.ForeignKey(User, models.SET_NULL, null=True, related_name="generations")
    api_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True)
    source = models.CharField(max_length=20, default="api")  # which surface submitted it
    # Where to POST this generation's final event (Standard Webhooks), and the public base
    # URL the request came in on (for absolute links in webhook payloads).
    webhook_url = models.URLField(max_length=2048, blank=True)
    public_base = models.CharField(max_length=300, blank=True)
    remixed_from = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="remixes"
    )
    test_mode = models.BooleanField(default=False)

    # The request, as validated.
    mode = models.CharField(max_length=20, choices=Mode.choices)
    model = models.CharField(max_length=40)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    image_url = models.TextField(blank=True)
    input_image = models.FileField(upload_to="inputs/", blank=True)
    duration = models.PositiveIntegerField()
    resolution = models.CharField(max_length=8)
    aspect_ratio = models.CharField(max_length=8)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    fps = models.PositiveIntegerField()
    num_frames = models.PositiveIntegerField()
    seed_requested = models.BigIntegerField(null=True, blank=True)
    seed = models.BigIntegerField()
    camera_fixed = models.BooleanField(default=False)
    add_audio = models.BooleanField(default=False)
    audio_prompt = models.TextField(blank=True)
    style = models.CharField(max_length=40, default="realistic")
    cfg_scale = models.FloatField(null=True, blank=True)
    guidance_scale = models.FloatField(null=True, blank=True)
    enable_safety_checker = models.BooleanField(default=True)

    # The lifecycle. The row, not the queue, is the truth.
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claim = models.CharField(max_length=32, blank=True)  # token of the run that owns the row
    cancel_requested = models.BooleanField(default=False)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)

    # Results.
    engine = models.CharField(max_length=40, blank=True)
    engine_handle = models.JSONField(default=dict, blank=True)
    # Remote engines: when the next poll of the provider is due (None: none scheduled).
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    video = models.FileField(upload_to="videos/", blank=True)
    poster = models.FileField(upload_to="posters/", blank=True)
    preview = models.FileField(upload_to="previews/", blank=True)
    spritesheet = models.FileField(upload_to="spritesheets/", blank=True)
    # Sharing: a public page at /s/<share_token> while set; unsharing clears it.
    share_token = models.CharField(max_length=40, unique=True, null=True, blank=True)
    shared_at = models.DateTimeField(null=True, blank=True)
    video_size = models.PositiveBigIntegerField(default=0)
    has_audio = models.BooleanField(default=False)
    # Retention (VIDEOGEN_RETENTION_DAYS, generations/retention.py): when the files were
    # deleted; the file fields are cleared then, the record itself stays.
    files_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["team", "-created_at"], name="gen_team_recent"),
            models.Index(fields=["status", "heartbeat_at"], name="gen_status_heartbeat"),
        ]

    def __str__(self) -> str:
        return self.generation_id

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def processing_time(self) -> int | None:
        """Whole seconds from pick-up to finish, as the reference API reports it."""
        if self.started_at and self.finished_at:
            return round((self.finished_at - self.started_at).total_seconds())
        return None


class WorkerHeartbeat(models.Model):
    """The last time a worker cluster ran its scheduled reaper (generations/health.py). In
    the database, because the web processes that report it share nothing else with it."""

    cluster = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=200, blank=True)  # hostname:pid of the last writer
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.cluster} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class UsageEvent(models.Model):
    """The ledger: one row per charge and per refund; usage is their sum."""

    class Kind(models.TextChoices):
        CHARGE = "charge"  # reserved at submit
        SETTLE = "settle"  # the reservation became final: the video was delivered
        REFUND = "refund"
        GRANT = "grant"  # credits added by an admin

    team = models.ForeignKey(Team, models.CASCADE, related_name="usage_events")
    user = models.ForeignKey(User, models.SET_NULL, null=True, blank=True)
    api_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True)
    generation = models.ForeignKey(Generation, models.SET_NULL, null=True, related_name="usage")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    units = models.IntegerField()  # +1 for a charge, -1 for a refund
    credits = models.DecimalField(max_digits=14, decimal_places=2, default=0)  # signed like units
    month = models.CharField(max_length=7)  # "2026-11", calendar month in UTC
    model = models.CharField(max_length=40)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # A generation is charged at most once and refunded at most once.
            models.UniqueConstraint(
                fields=["generation", "kind"],
                condition=models.Q(generation__isnull=False),
                name="one_event_per_kind",
            )
        ]
        indexes = [models.Index(fields=["team", "month"], name="usage_team_month")]


class MonthlyUsage(models.Model):
    """A counter per team and month, moved only by conditional UPDATEs (exact under races)."""

    team = models.ForeignKey(Team, models.CASCADE, related_name="monthly_usage")
    month = models.CharField(max_length=7)
    used = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "month"], name="one_counter")]


class MemberMonthlyUsage(models.Model):
    """The same counter per member, for plans with a per-member monthly cap."""

    team = models.ForeignKey(Team, models.CASCADE, related_name="member_usage")
    user = models.ForeignKey(User, models.CASCADE, related_name="monthly_usage")
    month = models.CharField(max_length=7)
    used = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user", "month"], name="one_member_counter")
        ]


class IdempotencyRecord(models.Model):
    """An `Idempotency-Key` seen on a create request, and the response it produced (24 h)."""

    api_key = models.ForeignKey(ApiKey, models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)  # None: running
    response_body = models.TextField(blank=True)
    # Set in the transaction that saves the generation: a request killed after that commit
    # but before its answer was stored is answered from here on retry.
    generation = models.OneToOneField(
        "Generation", models.SET_NULL, null=True, blank=True, related_name="idempotency_record"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="one_record_per_key")
        ]


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


class WebhookEndpoint(models.Model):
    """A team-wide URL that receives every generation event of the team."""

    team = models.ForeignKey(Team, models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2048)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event for one URL, with its attempts: the dashboard's delivery log."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    team = models.ForeignKey(Team, models.CASCADE, related_name="webhook_deliveries")
    generation = models.ForeignKey(
        Generation, models.SET_NULL, null=True, related_name="webhook_deliveries"
    )
    message_id = models.CharField(max_length=40, unique=True)
    event = models.CharField(max_length=40)
    url = models.URLField(max_length=2048)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due")]
