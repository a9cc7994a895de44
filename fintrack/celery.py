"""The Celery app: configured from Django settings (CELERY_*), tasks discovered in every app.

Queues per kind of work (settings.CELERY_TASK_ROUTES): `sync` (bank syncs and their fan-out
chunks), `analytics` (recomputations), `maintenance` (beat's fan-out, the reaper, purges, polls).
A worker started without `-Q` consumes all three (the embedded default); production runs one
worker for `sync` and one for `analytics,maintenance` (docker-compose.yml), so a backlog of
syncs never delays the reaper or a user's analytics.

Every task runs under a correlation id, the sender's when it had one (fintrack.core.logging),
and the worker's log lines print it.
"""

import os

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    before_task_publish,
    task_postrun,
    task_prerun,
)

from fintrack.core import logging as correlation_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fintrack.settings")

app = Celery("fintrack")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

before_task_publish.connect(correlation_logging.task_publish_stamp, weak=False)
task_prerun.connect(correlation_logging.task_scope_enter, weak=False)
task_postrun.connect(correlation_logging.task_scope_exit, weak=False)
after_setup_logger.connect(correlation_logging.worker_handlers_format, weak=False)
after_setup_task_logger.connect(correlation_logging.worker_handlers_format, weak=False)
