# Progress that moves smoothly (issue 24): the transactions read by pages, for the ETA.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('sync', '0007_run_phase'),
    ]

    operations = [
        migrations.AddField(
            model_name='syncrun',
            name='pages_done',
            field=models.PositiveIntegerField(default=0, help_text='Pages of transactions the read under way has done.'),
        ),
        migrations.AddField(
            model_name='syncrun',
            name='pages_started_at',
            field=models.DateTimeField(blank=True, help_text='When that read began (its pages per second: the ETA).', null=True),
        ),
        migrations.AddField(
            model_name='syncrun',
            name='pages_total',
            field=models.PositiveIntegerField(blank=True, help_text="Pages that read takes, once the accounts' first pages said (null before).", null=True),
        ),
        migrations.AddField(
            model_name='syncrun',
            name='progress_updated_at',
            field=models.DateTimeField(blank=True, help_text='When progress and counts were last written.', null=True),
        ),
    ]
