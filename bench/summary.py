"""Print one table of every benchmark's targets from bench/results/*.json (no Django needed)."""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = (
    "sync_full",
    "sync_celery",
    "first_figures",
    "dashboard",
    "analytics",
    "transactions_list",
    "analytics_accuracy",
    "categories",
    "transactions_export",
    "scale_sync",
    "storage",
)


def main() -> None:
    rows = []
    for name in ORDER:
        path = RESULTS / f"{name}.json"
        if not path.is_file():
            rows.append((name, "(no result)", "", "", "MISSING"))
            continue
        data = json.loads(path.read_text())
        for item in data["targets"]:
            verdict = "ok" if item["holds"] else "MISSED"
            rows.append((name, item["name"], f"{item['value']:.3f}", item["bound"], verdict))
    widths = [max(len(str(row[i])) for row in rows) for i in range(5)]
    header = ("benchmark", "target", "value", "bound", "")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    line = "  ".join("-" * w for w in widths)
    print("Benchmark summary (medians; details in bench/results/<name>.json)")
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print(line)
    missed = sum(1 for row in rows if row[4] != "ok")
    print(f"{len(rows) - missed} of {len(rows)} targets hold")


if __name__ == "__main__":
    main()
