"""Print the ground truth of sandbox clients' money as JSON: `manage.py sandbox_truth 1 2 3`."""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from sandbox.money_truth import client_money_truth


class Command(BaseCommand):
    help = "The money truth (ANALYTICS-TRUTH.md) of live-style sandbox clients, as JSON."

    def add_arguments(self, parser):
        parser.add_argument("clients", nargs="+", help="client ids or numbers (3 = <team>-3)")
        parser.add_argument("--now", help="an ISO time with zone instead of the sandbox clock")

    def handle(self, *args, clients: list[str], now: str | None, **options):
        if settings.SANDBOX_DATA_STYLE != "live":
            raise CommandError("the money truth exists for the live data style only")
        moment = parse_datetime(now) if now else None
        if now and (moment is None or moment.tzinfo is None):
            raise CommandError("--now must be an ISO time with a zone, e.g. 2025-11-26T12:00:00Z")
        truths = [
            client_money_truth(c if "-" in c else f"{settings.BANK_TEAM_ID}-{c}", now=moment)
            for c in clients
        ]
        self.stdout.write(
            json.dumps(truths if len(truths) > 1 else truths[0], ensure_ascii=False, indent=2)
        )
