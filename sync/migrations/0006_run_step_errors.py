"""Per-step outcomes (issue 21): the optional steps a run could not do, each with its error; and
the run kind and trigger of a retry of those steps alone."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0005_run_status_partial"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="step_errors",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text=(
                    "Optional steps (products, agreements) this run could not do, each with its "
                    "error; the rest was stored and only these are retried."
                ),
            ),
        ),
        migrations.AlterField(
            model_name="syncrun",
            name="kind",
            field=models.CharField(
                choices=[
                    ("full", "Accounts, balances, transactions, agreements"),
                    ("balances", "Balances only"),
                    ("agreements", "Products and agreements only"),
                ],
                default="full",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="syncrun",
            name="trigger",
            field=models.CharField(
                choices=[
                    ("user", "User"),
                    ("onboarding", "Onboarding"),
                    ("schedule", "Schedule"),
                    ("admin", "Admin"),
                    ("step_retry", "Retry of a failed step"),
                ],
                default="user",
                max_length=16,
            ),
        ),
    ]
