"""Quarantined bank items (transaction items sent malformed, kept raw and retried by each sync)
and the count of open ones on their connection."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('banking', '0013_live_categories'),
    ]

    operations = [
        migrations.AddField(
            model_name='bankconnection',
            name='quarantined_items_open',
            field=models.PositiveIntegerField(default=0, help_text='Bank items held in quarantine (sent malformed), retried by every sync.'),
        ),
        migrations.CreateModel(
            name='QuarantinedBankItem',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('item_key', models.CharField(max_length=136)),
                ('bank_transaction_id', models.CharField(blank=True, default='', help_text="The bank's id, when readable.", max_length=128)),
                ('booking_date', models.DateTimeField(blank=True, help_text='Its booking time, when readable (what the watermark keeps).', null=True)),
                ('reason', models.CharField(help_text='Why it could not be stored as sent.', max_length=300)),
                ('raw_json', models.JSONField(blank=True, default=dict, help_text='The item as the bank sent it.')),
                ('first_seen_at', models.DateTimeField()),
                ('last_seen_at', models.DateTimeField()),
                ('times_seen', models.PositiveIntegerField(default=1, help_text='Syncs that read it malformed.')),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('resolution', models.CharField(blank=True, default='', help_text='stored, or no longer listed.', max_length=32)),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='quarantined_items', to='banking.account')),
                ('connection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='quarantined_items', to='banking.bankconnection')),
            ],
            options={
                'db_table': 'quarantined_bank_items',
                'ordering': ['-last_seen_at', '-id'],
                'indexes': [models.Index(condition=models.Q(('resolved_at__isnull', True)), fields=['account'], name='quarantine_open_by_account')],
                'constraints': [models.UniqueConstraint(fields=('account', 'item_key'), name='quarantined_item_unique_per_account')],
            },
        ),
    ]
