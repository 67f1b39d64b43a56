from django.db import migrations

REAPER = "videogen: reap stale generations"


def add_schedule(apps, schema_editor):
    # The reaper finds generations whose worker died and re-runs or fails them.
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=REAPER,
        defaults={
            "func": "generations.tasks.reap_stale",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=REAPER).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
