"""Profile one bank's full sync of the heavy client with pyinstrument (not part of bin/bench).

Same setup as benchmark 1 (bench database, sandbox over HTTP, frozen clock): a bare fetch of the
bank's pages first (it also warms the sandbox's history cache), then the sync in this process
under pyinstrument, and the process CPU time of both. `--no-lookahead` puts every bank call on
the main thread so one thread shows everything.

    .venv/bin/python bench/profile_sync.py [--bank vbank] [--no-lookahead] [--html out.html]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common


def main(bank_code: str, *, lookahead: bool, html: str | None) -> None:
    from django.conf import settings
    from pyinstrument import Profiler

    from banking.models import BankConnection

    settings.SYNC_PREFETCH_PAGES = lookahead
    common.migrate()
    with common.sandbox_server():
        common.wipe()
        common.sandbox_clock_freeze(common.bench_now())
        user = common.make_user("profile@bench.local", client_id=common.HEAVY_CLIENT)
        common.connect_banks(user, bank_codes=(bank_code,))
        plans = common.bare_fetch_plan(user, bank_codes=(bank_code,))
        common.bare_fetch(plans, page_limit=settings.SYNC_PAGE_LIMIT)
        cpu = time.process_time()
        bare = common.bare_fetch(plans, page_limit=settings.SYNC_PAGE_LIMIT)
        bare_cpu = time.process_time() - cpu
        pk = BankConnection.objects.get(user=user, bank_code=bank_code).pk
        profiler = Profiler(interval=0.001)
        cpu = time.process_time()
        started = time.perf_counter()
        profiler.start()
        run = common.sync_now(pk)
        profiler.stop()
        seconds = time.perf_counter() - started
        sync_cpu = time.process_time() - cpu
    pages = bare["calls"]
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    print(
        f"{bank_code}: {run.status}, {run.transactions_added} added, {pages} calls; "
        f"bare {bare['seconds']:.2f} s ({bare_cpu / pages * 1000:.1f} ms CPU per call), "
        f"sync {seconds:.2f} s ({sync_cpu / pages * 1000:.1f} ms CPU per call, profiled), "
        f"ratio {seconds / bare['seconds']:.2f}×"
    )
    if html:
        with open(html, "w") as out:
            out.write(profiler.output_html())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", default="vbank", choices=common.BANK_CODES)
    parser.add_argument("--no-lookahead", action="store_true")
    parser.add_argument("--html")
    arguments = parser.parse_args()
    main(arguments.bank, lookahead=not arguments.no_lookahead, html=arguments.html)
