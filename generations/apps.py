from __future__ import annotations

from django.apps import AppConfig


class GenerationsConfig(AppConfig):
    name = "generations"
    verbose_name = "Video generation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from generations import polling

        # Every django-q2 worker process schedules the due polls of remote jobs.
        post_spawn.connect(polling.start_dispatcher, dispatch_uid="videogen-poll-dispatcher")
