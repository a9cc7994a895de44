"""Where one bank's full sync of the heavy client spends its time (not part of bin/bench).

Same setup as benchmark 1 (bench database, sandbox over HTTP, frozen clock): a bare fetch of the
bank's pages first (it also warms the sandbox's history cache), a second, measured bare fetch (the
sync's own pages, `common.bare_fetch(planned=True)`; `--grid` for a plain grid of 100), then
the sync in this process. For both it prints the wall time and the CPU per bank call of the three
processes that share the machine's cores: this one, the sandbox server and PostgreSQL (its
processes still running at the end), and the busy CPU time of the whole machine (anything else
running shows there). Then the sync's transaction calls by kind (the read's pages, repairs and
re-reads). `--profile` runs the sync under pyinstrument (slower; the tree shows where the main
thread's wall time goes); `--no-lookahead` puts every bank call on the main thread; `--phases`
times the sync's stages on every thread (wall and that thread's CPU): the HTTP call (bank wait),
JSON decoding, parsing, the transaction writes (rows built, COPY, commit), the raw-log writes.
`--slots` records every rate-limit slot the sync took and prints the time no caller used: the
gaps between slots beyond the limiter's interval, by the thread that came late and by second.

    .venv/bin/python bench/profile_sync.py [--bank vbank] [--profile] [--phases] [--slots]
        [--grid] [--second]
"""

import argparse
import functools
import itertools
import os
import resource
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
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "wall": time.perf_counter(),
            "self": time.process_time(),
            "self_user": usage.ru_utime,
            "self_system": usage.ru_stime,
            "minor_faults": usage.ru_minflt,
            "switches": usage.ru_nvcsw + usage.ru_nivcsw,
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

    def detail(self, calls: int) -> str:
        """This process's CPU split into user and kernel time, its page faults and context
        switches, per call: what threads and allocation cost beside the Python work."""
        f = self.figures
        return (
            f"  this process per call: user {f['self_user'] / calls * 1000:.2f} ms, "
            f"system {f['self_system'] / calls * 1000:.2f} ms, "
            f"{f['minor_faults'] / calls:.0f} minor page faults, "
            f"{f['switches'] / calls:.1f} context switches"
        )


class PhaseMeter:
    """Wall time and thread CPU spent in a few functions of the sync, summed over threads.

    Each is wrapped in place (monkeypatched for this process only, restored at exit); a call
    inside another measured one counts in both (the writes include the COPY)."""

    def __init__(self):
        import threading

        self.lock = threading.Lock()
        self.figures: dict[str, list[float]] = {}  # name → [calls, wall, cpu]
        self._restore: list[tuple[object, str, object]] = []

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)
        meter = self

        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
                with meter.lock:
                    entry = meter.figures.setdefault(label, [0, 0.0, 0.0])
                    entry[0] += 1
                    entry[1] += wall
                    entry[2] += cpu

        self._restore.append((owner, name, original))
        setattr(owner, name, timed)

    def _sample_threads(self) -> None:
        """CPU of each thread of this process so far, kept at its largest (sampled)."""
        while not self._stop.wait(0.2):
            for key, cpu in self._thread_cpu_now().items():
                self.threads[key] = max(self.threads.get(key, 0.0), cpu)

    def __enter__(self):
        import threading
        import types

        self.threads: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample_threads, daemon=True)

        import orjson
        import requests

        from audit.capture import RawLogBuffer
        from banking.clients import circuit, parsing, ratelimit, transport
        from banking.ingestion import transactions

        self.wrap(ratelimit.BankRateLimiter, "acquire", "rate-limit slot (Redis, and any sleep)")
        self.wrap(circuit.BankCircuit, "admit", "circuit breaker admit (Redis)")
        self.wrap(requests.Session, "request", "HTTP request to headers (bank wait)")
        self.wrap(transport.BankTransport, "_read_body", "HTTP body read")
        shim = types.SimpleNamespace(**{n: getattr(orjson, n) for n in dir(orjson) if n[0] != "_"})
        self._restore.append((transport, "orjson", transport.orjson))
        transport.orjson = shim  # type: ignore[assignment]
        self.wrap(shim, "loads", "JSON decode (orjson.loads)")
        self.wrap(parsing, "transaction_page", "parse page (parsing.transaction_page)")
        self.wrap(transactions.TransactionWriter, "_write", "write batch (rows, COPY, commit)")
        self.wrap(transactions, "copy_rows", "  of which COPY (copy_rows)")
        self.wrap(transactions, "transactions_copy", "  of which rows built + COPY")
        self.wrap(RawLogBuffer, "flush", "raw-log write (RawLogBuffer.flush)")
        self._start_cpu = {
            name: cpu for name, cpu in self._thread_cpu_now().items()
        }  # threads already running (main): their CPU before the sync
        self._sampler.start()
        return self

    def _thread_cpu_now(self) -> dict[tuple[str, str], float]:
        """CPU of each live thread (Linux /proc/self/task), by (native id, Python name)."""
        import os
        import threading
        from pathlib import Path

        tick = os.sysconf("SC_CLK_TCK")
        names = {str(thread.native_id): thread.name for thread in threading.enumerate()}
        out = {}
        for task in Path("/proc/self/task").iterdir():
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the thread ended meanwhile
                continue
            name = names.get(task.name, "other")
            out[(task.name, name)] = (int(fields[11]) + int(fields[12])) / tick
        return out

    def __exit__(self, *exc):
        self._stop.set()
        self._sampler.join()
        for key, cpu in self._thread_cpu_now().items():
            self.threads[key] = max(self.threads.get(key, 0.0), cpu)
        for owner, name, original in reversed(self._restore):
            setattr(owner, name, original)

    def lines(self, calls: int) -> list[str]:
        by_kind: dict[str, float] = {}
        for key, cpu in self.threads.items():
            kind = key[1].rstrip("0123456789").rstrip("-") or key[1]
            by_kind[kind] = by_kind.get(kind, 0.0) + cpu - self._start_cpu.get(key, 0.0)
        out = [
            "  CPU by thread (sampled every 0.2 s; threads by name): "
            + ", ".join(
                f"{kind} {cpu / calls * 1000:.2f} ms"
                for kind, cpu in sorted(by_kind.items(), key=lambda item: -item[1])
            )
            + " per bank call"
        ]
        for label, (count, wall, cpu) in self.figures.items():
            out.append(
                f"  {label}: {count} calls, wall {wall:.2f} s ({wall / calls * 1000:.2f} ms per"
                f" bank call), CPU {cpu:.2f} s ({cpu / calls * 1000:.2f} ms per bank call)"
            )
        return out


class SlotRecorder:
    """Every rate-limit slot taken in a block: (slot time, seconds slept, thread name)."""

    def __enter__(self):
        import threading

        from banking.clients import ratelimit

        self.slots: list[tuple[float, float, str]] = []
        original = self._original = ratelimit.BankRateLimiter.acquire
        slots = self.slots

        def acquire(limiter, *args, **kwargs):
            slot = original(limiter, *args, **kwargs)
            slots.append((slot.at, slot.waited, threading.current_thread().name))
            return slot

        ratelimit.BankRateLimiter.acquire = acquire
        return self

    def __exit__(self, *exc):
        from banking.clients import ratelimit

        ratelimit.BankRateLimiter.acquire = self._original

    def lines(self, bank_code: str) -> list[str]:
        from banking.clients.ratelimit import rate_limit_for, slot_interval_us

        rate = rate_limit_for(bank_code)
        if not rate or len(self.slots) < 2:
            return ["  rate limit off: no slots"]
        interval = slot_interval_us(rate) / 1_000_000
        slots = sorted(self.slots)
        first = slots[0][0]
        idle_by_thread: dict[str, float] = {}
        idle_by_second: dict[int, float] = {}
        idle = 0.0
        for (before, _w, _t), (at, _waited, thread) in itertools.pairwise(slots):
            gap = at - before - interval
            if gap > 0.0005:
                idle += gap
                kind = thread.rstrip("0123456789").rstrip("-_") or thread
                idle_by_thread[kind] = idle_by_thread.get(kind, 0.0) + gap
                second = int(before - first)
                idle_by_second[second] = idle_by_second.get(second, 0.0) + gap
        span = slots[-1][0] - first
        sizes = [0.02, 0.05, 0.1, 0.3]
        histogram = [0.0] * (len(sizes) + 1)
        for (before, _w, _t), (at, _waited, _thread) in itertools.pairwise(slots):
            gap = at - before - interval
            if gap > 0.0005:
                histogram[sum(1 for size in sizes if gap > size)] += gap
        out = [
            f"  {len(slots)} slots over {span:.2f} s, interval {interval * 1000:.2f} ms: "
            f"{len(slots) * interval:.2f} s of slots, {idle:.2f} s no caller used",
            "  unused, by the thread that came late: "
            + ", ".join(
                f"{kind} {seconds:.2f} s"
                for kind, seconds in sorted(idle_by_thread.items(), key=lambda item: -item[1])
            ),
            "  unused, by the gap's length: "
            + ", ".join(
                f"{label} {seconds:.2f} s"
                for label, seconds in zip(
                    ["≤ 20 ms", "20–50 ms", "50–100 ms", "0.1–0.3 s", "> 0.3 s"],
                    histogram,
                    strict=True,
                )
            ),
            "  unused, by second of the sync (≥ 0.1 s): "
            + ", ".join(
                f"{second}s {seconds:.2f}"
                for second, seconds in sorted(idle_by_second.items())
                if seconds >= 0.1
            ),
        ]
        return out


def main(
    bank_code: str,
    *,
    lookahead: bool,
    profile: bool,
    html: str | None,
    phases: bool,
    slots: bool,
    grid: bool,
    second: bool,
) -> None:
    from contextlib import nullcontext

    from django.conf import settings

    from audit.models import Direction, RawApiLog
    from banking.models import BankConnection

    settings.SYNC_PREFETCH_PAGES = lookahead
    common.migrate()
    with common.sandbox_server() as sandbox:
        common.wipe()
        common.sandbox_clock_freeze(common.bench_now())
        user = common.make_user("profile@bench.local", client_id=common.HEAVY_CLIENT)
        common.connect_banks(user, bank_codes=(bank_code,))
        plans = common.bare_fetch_plan(user, bank_codes=(bank_code,))
        fetch = functools.partial(common.bare_fetch, planned=not grid)
        common.bare_fetch(plans, page_limit=settings.SYNC_PAGE_LIMIT)
        with CpuMeter(sandbox.pid) as bare_meter:
            bare = fetch(plans, page_limit=settings.SYNC_PAGE_LIMIT)
        pk = BankConnection.objects.get(user=user, bank_code=bank_code).pk
        if second:  # the measured sync is the second one, nothing new (benchmark 2)
            common.sync_now(pk)
        profiler = None
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.001)
            profiler.start()
        meter = PhaseMeter()
        recorder = SlotRecorder()
        with (
            meter if phases else nullcontext(),
            recorder if slots else nullcontext(),
            CpuMeter(sandbox.pid) as sync_meter,
        ):
            run = common.sync_now(pk)
        if profiler is not None:
            profiler.stop()
        endpoints = RawApiLog.objects.filter(
            correlation_id=str(run.correlation_id), direction=Direction.REQUEST
        ).values_list("endpoint", flat=True)
        kinds: dict[str, int] = {}
        for endpoint in endpoints:
            if "/transactions" in endpoint:
                size = endpoint.rsplit("limit=", 1)[-1]
                kind = f"transaction pages of {size} rows"
            else:
                kind = endpoint.split("?", 1)[0]
                kind = "/accounts/…/balances" if kind.endswith("/balances") else kind
            kinds[kind] = kinds.get(kind, 0) + 1
    calls = bare["calls"]
    if profiler is not None:
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        if html:
            with open(html, "w") as out:
                out.write(profiler.output_html())
    print(f"{bank_code}: {run.status}, {run.transactions_added} added, {calls} calls")
    print(bare_meter.line("bare fetch", calls))
    print(sync_meter.line("sync      ", calls) + (" (profiled)" if profile else ""))
    print(bare_meter.detail(calls).replace("  this", "  bare fetch: this"))
    print(sync_meter.detail(calls).replace("  this", "  sync: this"))
    print(f"ratio {sync_meter.figures['wall'] / bare_meter.figures['wall']:.2f}×")
    print(f"sync bank calls {run.bank_calls}, bare fetch {calls}; by kind:")
    for kind, count in sorted(kinds.items(), key=lambda item: -item[1]):
        print(f"  {count:6d} {kind}")
    if phases:
        print("sync phases (per bank call of the bare fetch):")
        print("\n".join(meter.lines(calls)))
    if slots:
        print("rate-limit slots of the sync:")
        print("\n".join(recorder.lines(bank_code)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", default="vbank", choices=common.BANK_CODES)
    parser.add_argument("--no-lookahead", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--html")
    parser.add_argument("--phases", action="store_true")
    parser.add_argument(
        "--slots", action="store_true", help="where the limiter's slots went unused"
    )
    parser.add_argument("--grid", action="store_true", help="bare fetch of a plain grid of 100")
    parser.add_argument(
        "--second", action="store_true", help="measure the second sync (nothing new) instead"
    )
    arguments = parser.parse_args()
    main(
        arguments.bank,
        lookahead=not arguments.no_lookahead,
        profile=arguments.profile or bool(arguments.html),
        html=arguments.html,
        phases=arguments.phases,
        slots=arguments.slots,
        grid=arguments.grid,
        second=arguments.second,
    )
