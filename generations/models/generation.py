"""A generation: the request as validated, its lifecycle and its results. The row, not the
queue, is the truth (generations/core/lifecycle.py moves its status)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import ClassVar

from django.db import models
from django.utils import timezone

from generations.ids import new_batch_id, new_generation_id, new_sequence_id
from generations.models.accounts import ApiKey, Team, User
from generations.spec import GenerationSpec
from generations.vocabulary import (
    FINAL_STATUSES,
    MODE_CHOICES,
    STATUS_CHOICES,
    Lane,
    Mode,
    Status,
)


class Generation(models.Model):
    # The shared vocabulary (generations/vocabulary.py), where code reads it off the model.
    Status = Status
    Mode = Mode
    FINAL_STATUSES: ClassVar[frozenset[str]] = FINAL_STATUSES
    # The stored files of a generation (deleted with it, or by the retention policy).
    FILE_FIELDS: ClassVar[tuple[str, ...]] = (
        "video", "poster", "preview", "spritesheet", "input_image", "end_image"
    )  # fmt: skip

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
    # Takes: the batch this generation is an item of (None: submitted on its own), and its
    # lane in the team's waiting line (vocabulary.Lane: interactive before batch).
    batch = models.ForeignKey("Batch", models.SET_NULL, null=True, blank=True, related_name="items")
    lane = models.PositiveSmallIntegerField(default=Lane.INTERACTIVE.value)
    # The worker cluster whose queue runs it (the main one, or the GPU one for diffusers
    # engines): fixed at submit, so the dispatcher keeps each queue shallow on its own.
    queue = models.CharField(max_length=100, blank=True)
    # Shots (CONTRACT 6): the generation this one extends (its video is that one's frames
    # followed by this one's), and the sequence this one is a shot of, at `shot_index`.
    extended_from = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="extensions"
    )
    sequence = models.ForeignKey(
        "Sequence", models.SET_NULL, null=True, blank=True, related_name="shots"
    )
    shot_index = models.PositiveSmallIntegerField(null=True, blank=True)

    # The request, as validated.
    mode = models.CharField(max_length=20, choices=MODE_CHOICES)
    model = models.CharField(max_length=40)
    # The name the request used when it was an alias of `model` (VIDEOGEN_MODEL_ALIASES).
    requested_model = models.CharField(max_length=40, blank=True)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    image_url = models.TextField(blank=True)
    input_image = models.FileField(upload_to="inputs/", blank=True)
    # The last frame (keyframes): as given (data: URLs shortened), and the stored copy.
    end_image_url = models.TextField(blank=True)
    end_image = models.FileField(upload_to="inputs/", blank=True)
    duration = models.PositiveIntegerField()
    resolution = models.CharField(max_length=8)
    aspect_ratio = models.CharField(max_length=8)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    fps = models.PositiveIntegerField()
    num_frames = models.PositiveIntegerField()
    seed = models.BigIntegerField()
    camera_fixed = models.BooleanField(default=False)
    add_audio = models.BooleanField(default=False)
    audio_prompt = models.TextField(blank=True)
    style = models.CharField(max_length=40, default="realistic")
    cfg_scale = models.FloatField(null=True, blank=True)
    guidance_scale = models.FloatField(null=True, blank=True)
    enable_safety_checker = models.BooleanField(default=True)

    # The lifecycle. The row, not the queue, is the truth.
    status = models.CharField(max_length=12, choices=STATUS_CHOICES, default=Status.PENDING)
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
    # Every provider tried, in order: {"provider", "outcome", "at", "detail"}; the last one
    # that did not fail over is `engine`, the one serving it.
    route_attempts = models.JSONField(default=list, blank=True)
    # US dollars: the estimate reserved at submit, and what it cost once served (the
    # provider's billed figure where it reports one, `cost_source` "billed", else the
    # price table's, "price_table"); 0 on engines of our own.
    est_usd = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    cost_source = models.CharField(max_length=12, blank=True)
    # Where its sound came from: "native" (the model's), a video-to-audio route's name,
    # "procedural" (our sound bed), "" (silent).
    audio_source = models.CharField(max_length=40, blank=True)
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
    # Provenance (core/provenance.py): the random payload of the invisible watermark in this
    # generation's frames; a video's mark leads back here, and nothing else does.
    mark = models.BigIntegerField(null=True, blank=True, unique=True)
    # Retention (VIDEOGEN_RETENTION_DAYS, generations/retention.py): when the files were
    # deleted; the file fields are cleared then, the record itself stays.
    files_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["team", "-created_at"], name="gen_team_recent"),
            models.Index(fields=["status", "heartbeat_at"], name="gen_status_heartbeat"),
            # The lines the fair-share dispatcher reads (core/fairshare.py): per status and
            # queue, per team, by lane, oldest first. Not a partial index: SQLite uses one
            # only when the query spells its condition as a literal, never a bound parameter.
            models.Index(fields=["status", "queue", "team", "lane", "created_at"], name="gen_line"),
            models.Index(fields=["batch", "status"], name="gen_batch_status"),
            # History's filters, newest first (a rare status or model found without walking
            # the team's whole history).
            models.Index(fields=["team", "status", "-created_at"], name="gen_team_status"),
            models.Index(fields=["team", "model", "-created_at"], name="gen_team_model"),
            # The gallery: a team's finished videos with their files, by finish time.
            models.Index(
                fields=["team", "-finished_at", "-id"],
                condition=models.Q(status="completed", files_purged_at__isnull=True),
                name="gen_gallery",
            ),
            # A model's typical time (core/reports.typical_seconds, for ETAs): its latest
            # completed generations, and at one resolution (a rare one is not walked to).
            models.Index(
                fields=["model", "-finished_at"],
                condition=models.Q(status="completed"),
                name="gen_model_finished",
            ),
            models.Index(
                fields=["model", "resolution", "-finished_at"],
                condition=models.Q(status="completed"),
                name="gen_model_res_finished",
            ),
            # Retention: finished rows whose files are still there, oldest first.
            models.Index(
                fields=["finished_at", "id"],
                condition=models.Q(files_purged_at__isnull=True, finished_at__isnull=False),
                name="gen_unpurged",
            ),
        ]

    def __str__(self) -> str:
        return self.generation_id

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

    def spec(self) -> GenerationSpec:
        """The validated request this row holds, as the engines take it."""
        return GenerationSpec(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(GenerationSpec)}
        )

    @property
    def processing_time(self) -> int | None:
        """Whole seconds from pick-up to finish, as the reference API reports it."""
        if self.started_at and self.finished_at:
            return round((self.finished_at - self.started_at).total_seconds())
        return None


class Batch(models.Model):
    """Takes: generations submitted together as the cross product of prompts, models, seeds
    and variations (core/batches.py), admitted or refused as a whole. The items are ordinary
    generations (`items`); the batch adds their grid, the pick, and one final event."""

    batch_id = models.CharField(max_length=40, unique=True, default=new_batch_id)
    team = models.ForeignKey(Team, models.CASCADE, related_name="batches")
    user = models.ForeignKey(User, models.SET_NULL, null=True, related_name="batches")
    api_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True)
    source = models.CharField(max_length=20, default="api")
    test_mode = models.BooleanField(default=False)
    title = models.CharField(max_length=200, blank=True)  # what the dashboard calls it
    webhook_url = models.URLField(max_length=2048, blank=True)
    public_base = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When the last item became final: the moment its `batch.completed` event was queued.
    finished_at = models.DateTimeField(null=True, blank=True)
    # The take someone chose (one per batch).
    pick = models.ForeignKey(Generation, models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["team", "-created_at"], name="batch_team_recent")]

    def __str__(self) -> str:
        return self.batch_id


class Sequence(models.Model):
    """Shots in order, rendered as generations (`shots`) and stitched into one video with
    a transition between neighbours (core/sequences.py). Charged shot by shot; the stitch
    is free. Its status reads like a generation's."""

    class Transition(models.TextChoices):
        CUT = "cut"
        CROSSFADE = "crossfade"  # neighbours overlap by CROSSFADE_S
        CONTINUE = "continue"  # each shot starts on the previous one's last frame

    Status = Status
    FILE_FIELDS: ClassVar[tuple[str, ...]] = ("video", "poster", "preview", "spritesheet")

    sequence_id = models.CharField(max_length=40, unique=True, default=new_sequence_id)
    team = models.ForeignKey(Team, models.CASCADE, related_name="sequences")
    user = models.ForeignKey(User, models.SET_NULL, null=True, related_name="sequences")
    api_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True)
    source = models.CharField(max_length=20, default="api")
    test_mode = models.BooleanField(default=False)
    title = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=40)
    resolution = models.CharField(max_length=8)
    aspect_ratio = models.CharField(max_length=8)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    fps = models.PositiveIntegerField()
    transition = models.CharField(max_length=12, choices=Transition.choices)
    add_audio = models.BooleanField(default=False)
    public_base = models.CharField(max_length=300, blank=True)

    status = models.CharField(max_length=12, choices=STATUS_CHOICES, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The stitch's run: who holds it (a token) and since when (a stale one is run again).
    stitch_claim = models.CharField(max_length=32, blank=True)
    stitch_started_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    failed_shot = models.PositiveSmallIntegerField(null=True, blank=True)

    # The stitched result, and where each shot starts in it (seconds, in shot order).
    video = models.FileField(upload_to="videos/", blank=True)
    poster = models.FileField(upload_to="posters/", blank=True)
    preview = models.FileField(upload_to="previews/", blank=True)
    spritesheet = models.FileField(upload_to="spritesheets/", blank=True)
    video_size = models.PositiveBigIntegerField(default=0)
    num_frames = models.PositiveIntegerField(default=0)
    has_audio = models.BooleanField(default=False)
    markers = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["team", "-created_at"], name="seq_team_recent"),
            models.Index(fields=["status", "stitch_started_at"], name="seq_status_stitch"),
        ]

    def __str__(self) -> str:
        return self.sequence_id

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps else 0.0

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class Export(models.Model):
    """Another form of a finished video (an animated GIF, a WebM, a seamless loop), made
    by a worker on first request and kept (core/exports.py)."""

    class Format(models.TextChoices):
        GIF = "gif"
        WEBM = "webm"
        LOOP = "loop"

    class State(models.TextChoices):
        PENDING = "pending"
        READY = "ready"
        FAILED = "failed"

    generation = models.ForeignKey(
        Generation, models.CASCADE, null=True, blank=True, related_name="exports"
    )
    sequence = models.ForeignKey(
        Sequence, models.CASCADE, null=True, blank=True, related_name="exports"
    )
    format = models.CharField(max_length=8, choices=Format.choices)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    file = models.FileField(upload_to="exports/", blank=True)
    size = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["generation", "format"], name="export_gen_format"),
            models.UniqueConstraint(fields=["sequence", "format"], name="export_seq_format"),
            models.CheckConstraint(
                condition=models.Q(generation__isnull=False) ^ models.Q(sequence__isnull=False),
                name="export_one_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.generation_id or self.sequence_id}.{self.format}"


class WorkerHeartbeat(models.Model):
    """The last time a worker cluster ran its scheduled reaper (generations/health.py). In
    the database, because the web processes that report it share nothing else with it."""

    cluster = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=200, blank=True)  # hostname:pid of the last writer
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.cluster} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"
