"""The Django app (one app, `generations`), and the signals that tie django-q2's worker
processes to our background threads and log context."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _start_poll_dispatcher(**kwargs: Any) -> None:
    """post_spawn: every worker process of the main cluster enqueues the due polls of hosted
    jobs. Imported here, in the worker: generations.tasks brings the engines' media stack
    (PyAV, numpy), which a web process, where ready() also runs, never needs."""
    from generations.tasks.dispatch import start_dispatcher

    start_dispatcher(**kwargs)


class GenerationsConfig(AppConfig):
    name = "generations"
    verbose_name = "Video generation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported once the models exist (Django's rule for ready()).
        from django.core import checks
        from django_q.signals import post_execute_in_worker, post_spawn, pre_execute

        from generations.ops import health, signing, tasklogs
        from generations.rendering.diffusers import config as diffusers_config
        from generations.routing import aliases

        # `manage.py check` names what is wrong with VIDEOGEN_DIFFUSERS_MODELS.
        checks.register(diffusers_config.check_diffusers_models, "videogen")
        # ... and warns when production signs videos with the development certificate.
        checks.register(signing.check_signing_credentials, "videogen")
        # ... and refuses VIDEOGEN_MODEL_ALIASES entries with an unknown target or a chain.
        checks.register(aliases.check_aliases, "videogen")

        post_spawn.connect(_start_poll_dispatcher, dispatch_uid="videogen-poll-dispatcher")
        # ... and a GPU cluster's worker processes beat for /healthz from a thread.
        post_spawn.connect(health.start_gpu_heartbeat, dispatch_uid="videogen-gpu-heartbeat")
        # Task log lines carry the task's name and generation id (ops/tasklogs.py).
        pre_execute.connect(tasklogs.task_started, dispatch_uid="videogen-log-task-started")
        post_execute_in_worker.connect(
            tasklogs.task_finished, dispatch_uid="videogen-log-task-done"
        )
