# Connecting asynchronously (issue 21): the connect a web request asks for, done by a worker.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('sync', '0001_initial'),  # SyncRun exists from the first one
        ('users', '0006_client_id_moves_to_connections'),
    ]

    operations = [
        migrations.CreateModel(
            name='ConnectRequest',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('bank_code', models.CharField(max_length=16)),
                ('trigger', models.CharField(default='user', max_length=16)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='queued', max_length=16)),
                ('client_id', models.CharField(blank=True, default='', max_length=64)),
                ('previous_client_id', models.CharField(blank=True, default='', max_length=64)),
                ('previous_client_id_is_demo', models.BooleanField(default=False)),
                ('outcome', models.CharField(blank=True, default='', help_text='sync_started or awaiting_approval once succeeded.', max_length=32)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('task_id', models.CharField(blank=True, default='', max_length=64)),
                ('error', models.TextField(blank=True, default='')),
                ('error_code', models.CharField(blank=True, default='', max_length=64)),
                ('next_retry_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('sync_run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='sync.syncrun')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='connect_requests', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'connect_requests',
                'ordering': ['-created_at', '-id'],
                'indexes': [models.Index(fields=['user', 'bank_code', '-created_at'], name='connect_user_bank_recent')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('status__in', ['queued', 'running'])), fields=('user', 'bank_code'), name='one_active_connect_per_user_bank')],
            },
        ),
    ]
