"""Progressive first sync (issue 25): where a full run is in reading the history."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0006_run_step_errors"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="phase",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "One pass"),
                    ("recent", "Newest days first"),
                    ("backfill", "Older history"),
                ],
                default="",
                help_text=(
                    "A first sync: newest days first (recent), then the older history (backfill)."
                ),
                max_length=16,
            ),
        ),
    ]
