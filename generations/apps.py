from __future__ import annotations

from django.apps import AppConfig


class GenerationsConfig(AppConfig):
    name = "generations"
    verbose_name = "Video generation"
    default_auto_field = "django.db.models.BigAutoField"
