"""Scale (issue 20): the usage rollups and the metrics snapshot, indexes for History's
filters, the gallery, retention and a month's ledger rows by time, and on PostgreSQL a trigram index for History's search
(pg_trgm, a trusted extension the database's owner may create; SQLite searches by scan)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

# The expression Django's `icontains` compiles to on PostgreSQL: UPPER(prompt::text) LIKE ...
TRIGRAM_INDEX = (
    "CREATE INDEX IF NOT EXISTS gen_prompt_trgm ON generations_generation "
    "USING gin ((UPPER(prompt::text)) gin_trgm_ops)"
)


def trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(TRIGRAM_INDEX)


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS gen_prompt_trgm")


METRICS = "videogen: metrics snapshot"


def add_schedule(apps, schema_editor):
    # Every minute: the heavy series of /metrics, kept for the scrapes (ops/metrics.py).
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=METRICS,
        defaults={
            "func": "generations.tasks.refresh_metrics",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=METRICS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0018_routing_money"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.CreateModel(
            name="MetricsSnapshot",
            fields=[
                ("name", models.CharField(max_length=40, primary_key=True, serialize=False)),
                ("body", models.JSONField(default=dict)),
                ("computed_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("took_s", models.FloatField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name="UsageDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("month", models.CharField(max_length=7)),
                ("day", models.DateField()),
                ("model", models.CharField(max_length=40)),
                ("engine", models.CharField(blank=True, max_length=40)),
                ("test_mode", models.BooleanField(default=False)),
                ("ledger", models.BooleanField(default=False)),
                ("units", models.IntegerField(default=0)),
                ("usd", models.DecimalField(decimal_places=4, default=0, max_digits=14)),
                ("submitted", models.IntegerField(default=0)),
                ("completed", models.IntegerField(default=0)),
                ("failed", models.IntegerField(default=0)),
                ("seconds", models.IntegerField(default=0)),
                ("costed", models.IntegerField(default=0)),
                ("cost_usd", models.DecimalField(decimal_places=4, default=0, max_digits=14)),
            ],
        ),
        migrations.CreateModel(
            name="UsageRolled",
            fields=[
                (
                    "team",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="generations.team",
                    ),
                ),
                ("until", models.DateField()),
            ],
        ),
        migrations.AddIndex(
            model_name="generation",
            index=models.Index(fields=["team", "status", "-created_at"], name="gen_team_status"),
        ),
        migrations.AddIndex(
            model_name="generation",
            index=models.Index(fields=["team", "model", "-created_at"], name="gen_team_model"),
        ),
        migrations.AddIndex(
            model_name="generation",
            index=models.Index(
                condition=models.Q(("files_purged_at__isnull", True), ("status", "completed")),
                fields=["team", "-finished_at", "-id"],
                name="gen_gallery",
            ),
        ),
        migrations.AddIndex(
            model_name="generation",
            index=models.Index(
                condition=models.Q(
                    ("files_purged_at__isnull", True), ("finished_at__isnull", False)
                ),
                fields=["finished_at", "id"],
                name="gen_unpurged",
            ),
        ),
        migrations.AddField(
            model_name="usageday",
            name="api_key",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="generations.apikey",
            ),
        ),
        migrations.AddField(
            model_name="usageday",
            name="team",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="usage_days",
                to="generations.team",
            ),
        ),
        migrations.AddField(
            model_name="usageday",
            name="user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="usageday",
            index=models.Index(fields=["team", "month", "day"], name="usageday_team_month"),
        ),
        migrations.AddIndex(
            model_name="generation",
            index=models.Index(
                condition=models.Q(("status", "completed")),
                fields=["model", "-finished_at"],
                name="gen_model_finished",
            ),
        ),
        migrations.AddIndex(
            model_name="generation",
            index=models.Index(
                condition=models.Q(("status", "completed")),
                fields=["model", "resolution", "-finished_at"],
                name="gen_model_res_finished",
            ),
        ),
        migrations.RemoveIndex(
            model_name="usageevent",
            name="usage_team_month",
        ),
        migrations.AddIndex(
            model_name="usageevent",
            index=models.Index(fields=["team", "month", "created_at"], name="usage_team_month_at"),
        ),
        migrations.RunPython(trigram_index, drop_trigram_index),
        migrations.RunPython(add_schedule, remove_schedule),
    ]
