"""Runs may end `partial`: finished with the data stored, but not all the bank counts or sends."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('sync', '0004_run_heartbeat_and_reaper_schedule'),
    ]

    operations = [
        migrations.AlterField(
            model_name='syncrun',
            name='status',
            field=models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('partial', 'Partial'), ('failed', 'Failed')], default='queued', max_length=16),
        ),
    ]
