from __future__ import annotations

from django.apps import AppConfig


class GenerationsConfig(AppConfig):
    name = "generations"
    verbose_name = "Video generation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_execute_in_worker, post_spawn, pre_execute

        from generations import health, logs, polling

        # Every django-q2 worker process schedules the due polls of remote jobs.
        post_spawn.connect(polling.start_dispatcher, dispatch_uid="videogen-poll-dispatcher")
        # ... and a GPU cluster's worker processes beat for /healthz from a thread.
        post_spawn.connect(health.start_gpu_heartbeat, dispatch_uid="videogen-gpu-heartbeat")
        # Task log lines carry the task's name and generation id (generations/logs.py).
        pre_execute.connect(logs.task_started, dispatch_uid="videogen-log-task-started")
        post_execute_in_worker.connect(logs.task_finished, dispatch_uid="videogen-log-task-done")
