"""Serve only the sandbox banks over real HTTP, like remote banks: `manage.py run_sandbox`."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.core.servers.basehttp import WSGIServer, run


class Command(BaseCommand):
    help = "Serve only the sandbox banks (threaded), at /<bank>/ and /sandbox/<bank>/."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8100)

    def handle(self, *args, addr: str, port: int, **options):
        # This process answers sandbox URLs only; FinTrack's own API is not reachable here.
        settings.ROOT_URLCONF = "sandbox.server_urls"
        from django.core.handlers.wsgi import WSGIHandler

        WSGIServer.request_queue_size = 64
        self.stdout.write(f"Sandbox banks on http://{addr}:{port}/sandbox/<vbank|abank|sbank>/")
        run(addr, port, WSGIHandler(), ipv6=False, threading=True)
