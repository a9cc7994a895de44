"""Where one bank's full sync of the heavy client spends its time (not part of bin/bench).

Same setup as benchmark 1 (bench database, sandbox over HTTP, frozen clock): a bare fetch of the
bank's pages first (it also warms the sandbox's history cache), a second, measured bare fetch, then
the sync in this process. For both it prints the wall time and the CPU per bank call of the three
processes that share the machine's cores: this one, the sandbox server and PostgreSQL (its
processes still running at the end), and the busy CPU time of the whole machine (anything else
running shows there). `--profile` runs the sync under pyinstrument (slower; the tree shows where
wall time goes); `--no-lookahead` puts every bank call on the main thread.

    .venv/bin/python bench/profile_sync.py [--bank vbank] [--profile] [--no-lookahead] [--html f]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common


class CpuMeter:
    """Wall time and CPU of this process, the sandbox process and PostgreSQL over a block."""

    def __init__(self, sandbox_pid: int):
        self.sandbox_pid = sandbox_pid

    def __enter__(self):
        self._start = self._read()
        return self

    def __exit__(self, *exc):
        end = self._read()
        self.figures = {name: end[name] - self._start[name] for name in end}

    def _read(self) -> dict:
        return {
            "wall": time.perf_counter(),
            "self": time.process_time(),
            "sandbox": common.process_cpu_seconds(self.sandbox_pid),
            "postgres": common.postgres_cpu_seconds(),
            "machine": common.machine_busy_seconds(),
        }

    def line(self, label: str, calls: int) -> str:
        f = self.figures
        per_call = {
            name: f[name] / calls * 1000 for name in ("self", "sandbox", "postgres", "machine")
        }
        return (
            f"{label}: {f['wall']:.2f} s ({f['wall'] / calls * 1000:.2f} ms per call); "
            f"CPU per call — this process {per_call['self']:.2f} ms, "
            f"sandbox {per_call['sandbox']:.2f} ms, "
            f"PostgreSQL {per_call['postgres']:.2f} ms (its processes still running); "
            f"whole machine {per_call['machine']:.2f} ms "
            f"of {os.cpu_count() * f['wall'] / calls * 1000:.2f}"
        )


def main(bank_code: str, *, lookahead: bool, profile: bool, html: str | None) -> None:
    from django.conf import settings

    from banking.models import BankConnection

    settings.SYNC_PREFETCH_PAGES = lookahead
    common.migrate()
    with common.sandbox_server() as sandbox:
        common.wipe()
        common.sandbox_clock_freeze(common.bench_now())
        user = common.make_user("profile@bench.local", client_id=common.HEAVY_CLIENT)
        common.connect_banks(user, bank_codes=(bank_code,))
        plans = common.bare_fetch_plan(user, bank_codes=(bank_code,))
        common.bare_fetch(plans, page_limit=settings.SYNC_PAGE_LIMIT)
        with CpuMeter(sandbox.pid) as bare_meter:
            bare = common.bare_fetch(plans, page_limit=settings.SYNC_PAGE_LIMIT)
        pk = BankConnection.objects.get(user=user, bank_code=bank_code).pk
        profiler = None
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.001)
            profiler.start()
        with CpuMeter(sandbox.pid) as sync_meter:
            run = common.sync_now(pk)
        if profiler is not None:
            profiler.stop()
    calls = bare["calls"]
    if profiler is not None:
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        if html:
            with open(html, "w") as out:
                out.write(profiler.output_html())
    print(f"{bank_code}: {run.status}, {run.transactions_added} added, {calls} calls")
    print(bare_meter.line("bare fetch", calls))
    print(sync_meter.line("sync      ", calls) + (" (profiled)" if profile else ""))
    print(f"ratio {sync_meter.figures['wall'] / bare_meter.figures['wall']:.2f}×")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", default="vbank", choices=common.BANK_CODES)
    parser.add_argument("--no-lookahead", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--html")
    arguments = parser.parse_args()
    main(
        arguments.bank,
        lookahead=not arguments.no_lookahead,
        profile=arguments.profile or bool(arguments.html),
        html=arguments.html,
    )
