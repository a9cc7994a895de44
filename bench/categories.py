"""Benchmark 8: which rule decides each transaction's category on live-style data, clients 1-10.

For each sandbox client: connect the banks it has and sync them, then put every stored row back
through the built-in rules (`banking.categorization.category_decision_for`) and count the rule
that decided it: a merchant's credit (refund), the MCC, the merchant category, a description
keyword (`description:<rule>`), or none (`default`: other / other income). Target: at most 3% of
rows decided by no rule, per client and overall. Also printed, from the sandbox's own record of
what it generated each row as (income stream, bill, loan, purchase kind …, never from FinTrack):
rows whose category is not the one meant, and credits whose income kind is not the one meant;
and, as a robustness figure, the share decided by no rule had the banks sent no merchant objects.
Exits 0 even when a target is missed.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/fintrack_bench_d \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/12 .venv/bin/python bench/categories.py [--clients 1,2]
"""

import argparse
import os
import sys
import time
import traceback
import warnings
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common

warnings.filterwarnings("ignore", message="No directory at")  # staticfiles: not collected here

TITLE = "8. Categories: the rule that decided each row, live-style sandbox, clients 1-10"
DEFAULT_SHARE_TARGET = 0.03


def meant_kinds(client_id: str, banks: list[str]) -> dict[tuple[str, str], str]:
    """(bank, transaction id) → what the sandbox generated the row as."""
    from sandbox import clock, data
    from sandbox.volume import data_key

    state = clock.state()
    key = data_key(client_id, state.anchor)
    meant = {}
    for bank in banks:
        for account in data.bank_layout(key, bank).accounts:
            history = data.history(key, account, state.now)
            for served in history.slice(0, len(history)):
                record = served.record
                kind = record.kind
                if kind in ("everyday", "bill"):
                    kind = f"{kind}:{record.reference}"
                meant[(bank, record.transaction_id)] = kind
    return meant


def sync_client(user, banks: list[str]) -> list[str]:
    """Connect and sync each bank; the problems met (a bank that fails must not stop others)."""
    problems = []
    for bank in banks:
        try:
            (connection_row,) = common.connect_banks(user, [bank])
            run = common.sync_now(connection_row.pk)
        except Exception as exc:
            problems.append(f"{bank}: {exc}"[:90])
            continue
        if run.status != "succeeded":
            problems.append(f"{bank}: sync {run.status}: {run.error}"[:90])
    return problems


def classify(user, meant: dict) -> dict:
    """Every stored row of the user through the rules: counts per rule and the disagreements."""
    from banking.categorization import category_decision_for, income_kind_of
    from banking.models import Transaction
    from sandbox.expected_categories import MEANT_CATEGORY, MEANT_INCOME_KIND

    rules: Counter = Counter()
    bare_rules: Counter = Counter()
    unlike_stored = 0
    unlike_meant: Counter = Counter()
    income_unlike_meant: Counter = Counter()
    unknown = 0
    columns = (
        "bank_code",
        "bank_transaction_id",
        "description",
        "mcc",
        "merchant_category",
        "merchant_name",
        "amount",
        "category__code",
    )
    rows = Transaction.objects.filter(user=user).values_list(*columns)
    for (
        bank,
        tx_id,
        description,
        mcc,
        merchant_category,
        merchant_name,
        amount,
        stored,
    ) in rows.iterator(chunk_size=5000):
        decision = category_decision_for(
            description=description, mcc=mcc, merchant_category=merchant_category, amount=amount
        )
        rules[decision.rule] += 1
        # The same row had the bank left out its merchant object (MCC and merchant category).
        bare = category_decision_for(
            description=description, mcc="", merchant_category="", amount=amount
        )
        bare_rules[bare.rule] += 1
        unlike_stored += decision.code != stored
        kind = meant.get((bank, tx_id))
        if kind is None:
            unknown += 1
            continue
        if MEANT_CATEGORY.get(kind) != decision.code:
            unlike_meant[f"{kind} → {decision.code}"] += 1
        if amount > 0:
            income_kind = income_kind_of(
                description=description,
                category_code=decision.code,
                amount=amount,
                merchant_name=merchant_name,
            )
            if MEANT_INCOME_KIND.get(kind) != income_kind:
                income_unlike_meant[f"{kind} → {income_kind or '—'}"] += 1
    return {
        "rows": sum(rules.values()),
        "rules": dict(rules.most_common()),
        "default": rules.get("default", 0),
        "default_without_merchant_objects": bare_rules.get("default", 0),
        "unlike_stored": unlike_stored,
        "unlike_meant": dict(unlike_meant.most_common()),
        "income_unlike_meant": dict(income_unlike_meant.most_common()),
        "not_served": unknown,
    }


def shares_line(rules: dict, rows: int) -> str:
    return ", ".join(f"{rule} {count / rows:.1%}" for rule, count in rules.items())


def run_client(number: int) -> tuple[list[str], dict]:
    from sandbox import clock
    from sandbox.live import persona_of
    from sandbox.volume import data_key

    client_id = f"team260-{number}"
    who = persona_of(data_key(client_id, clock.state().anchor))
    banks = list(who.banks)
    user = common.make_user(f"categories-{number}@bench.local", client_id=client_id)
    started = time.perf_counter()
    problems = sync_client(user, banks)
    seconds = time.perf_counter() - started
    result = classify(user, meant_kinds(client_id, banks))
    rows = max(result["rows"], 1)
    lines = [
        f"client {number} ({client_id}, {', '.join(banks)}): {result['rows']} rows in "
        f"{seconds:.1f} s; decided by no rule {result['default'] / rows:.2%}",
        f"  {shares_line(result['rules'], rows)}",
    ]
    if result["unlike_stored"]:
        lines.append(f"  stored category differs from the rules': {result['unlike_stored']}")
    for name, key in (("category", "unlike_meant"), ("income kind", "income_unlike_meant")):
        if result[key]:
            worst = ", ".join(f"{k} ×{v}" for k, v in list(result[key].items())[:4])
            lines.append(f"  {name} not as the sandbox meant: {worst}")
    lines.extend(f"  problem: {p}" for p in problems)
    return lines, {"client": client_id, "banks": banks, "problems": problems, **result}


def main(numbers: list[int]) -> None:
    from django.conf import settings

    # The heavy-volume knob is for the speed benchmarks: client 1 is its ordinary persona here.
    settings.SANDBOX_HEAVY_CLIENTS = ""
    common.BENCH_ENV["SANDBOX_HEAVY_CLIENTS"] = ""
    os.environ["SANDBOX_HEAVY_CLIENTS"] = ""
    common.migrate()
    common.wipe()
    now = common.bench_now()
    common.sandbox_clock_freeze(now)
    started = time.perf_counter()
    lines: list[str] = [f"sandbox clock frozen at {now.isoformat()}; clients {numbers}"]
    print(lines[0], flush=True)
    clients: list[dict] = []
    with common.sandbox_server():
        for number in numbers:
            try:
                client_lines, data = run_client(number)
            except Exception as exc:  # one client's crash must not hide the others
                traceback.print_exc()
                client_lines = [f"client {number}: CRASHED: {exc!r}"[:98]]
                data = {"client": f"team260-{number}", "crashed": repr(exc)}
            print("\n".join(client_lines), flush=True)
            lines.extend(client_lines)
            clients.append(data)

    done = [c for c in clients if "crashed" not in c]
    total_rules: Counter = Counter()
    for client in done:
        total_rules.update(client["rules"])
    total = sum(total_rules.values())
    rows = max(total, 1)
    default_share = total_rules.get("default", 0) / rows
    worst = max((c["default"] / max(c["rows"], 1) for c in done if c["rows"]), default=1.0)
    lines.append("")
    lines.append(
        f"overall: {total} rows of {len(done)} clients in {time.perf_counter() - started:.0f} s; "
        f"decided by no rule {default_share:.2%} (worst client {worst:.2%})"
    )
    for rule, count in total_rules.most_common():
        lines.append(f"  {rule:<36} {count:>7} {count / rows:>7.2%}")
    bare_default = sum(c["default_without_merchant_objects"] for c in done) / rows
    lines.append(
        f"without merchant objects (no MCC, no merchant category): decided by no rule "
        f"{bare_default:.2%}"
    )
    targets = [
        common.target(
            "8. share of rows decided by no rule, all clients",
            default_share,
            at_most=DEFAULT_SHARE_TARGET,
        ),
        common.target(
            "8. share of rows decided by no rule, worst client",
            worst,
            at_most=DEFAULT_SHARE_TARGET,
        ),
        common.target(
            "8. rows whose category is not the one the sandbox meant",
            sum(sum(c["unlike_meant"].values()) for c in done),
            at_most=0,
        ),
        common.target(
            "8. credits whose income kind is not the one the sandbox meant",
            sum(sum(c["income_unlike_meant"].values()) for c in done),
            at_most=0,
        ),
        common.target(
            "8. rows stored with another category than the rules give",
            sum(c["unlike_stored"] for c in done),
            at_most=0,
        ),
        common.target("8. clients that crashed the bench", len(clients) - len(done), at_most=0),
    ]
    payload = {
        "now": now,
        "rows": total,
        "rules": dict(total_rules.most_common()),
        "default_share": default_share,
        "worst_client_default_share": worst,
        "default_share_without_merchant_objects": bare_default,
        "clients": clients,
    }
    common.report("categories", TITLE, lines[-(len(total_rules) + 2) :], targets, payload)


def _clients(value: str) -> list[int]:
    numbers = [int(part) for part in value.split(",") if part.strip()]
    if not numbers or any(n < 1 for n in numbers):
        raise argparse.ArgumentTypeError("a comma-separated list of client numbers ≥ 1")
    return numbers


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=_clients, default=list(range(1, 11)))
    arguments = parser.parse_args()
    main(arguments.clients)
