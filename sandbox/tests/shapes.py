"""Shape checks against the contract examples: same keys, same JSON types, same formats."""

import re

ZONED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MONEY = re.compile(r"^\d+\.\d{2}$")

ZONED_KEYS = {"bookingDateTime", "valueDateTime", "dateTime", "creationDateTime",
              "statusUpdateDateTime", "expirationDateTime", "valid_until", "expiresAt"}  # fmt: skip
NAIVE_KEYS = {"created_at", "start_date", "end_date", "expires_at", "signed_at"}


def _kind(value) -> str:
    return "null" if value is None else type(value).__name__


OPTIONAL_KEYS = {"next", "prev"}  # pagination links appear only when there is such a page


def mismatches(actual, example, path="$", nullable=frozenset()) -> list[str]:
    """Where `actual` departs from the example's shape (empty list = conforms)."""
    key = path.rsplit(".", 1)[-1]
    if actual is None and (example is None or key in nullable):
        return []
    if isinstance(example, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {_kind(actual)} instead of object"]
        if set(actual) - OPTIONAL_KEYS != set(example) - OPTIONAL_KEYS:
            return [f"{path}: keys {sorted(actual)} != {sorted(example)}"]
        return [m for k in actual for m in mismatches(actual[k], example.get(k, ""),
                                                      f"{path}.{k}", nullable)]  # fmt: skip
    if isinstance(example, list):
        if not isinstance(actual, list):
            return [f"{path}: {_kind(actual)} instead of list"]
        problems = []
        for index, item in enumerate(actual):
            options = [mismatches(item, candidate, f"{path}[{index}]", nullable)
                       for candidate in example]  # fmt: skip
            if options and all(options):
                problems.append(min(options, key=len)[0])
        return problems
    if example is not None and _kind(actual) != _kind(example):
        return [f"{path}: {_kind(actual)} {actual!r} instead of {_kind(example)}"]
    if isinstance(actual, str):
        if key in ZONED_KEYS and not ZONED.match(actual):
            return [f"{path}: {actual!r} is not a zoned timestamp"]
        if key in NAIVE_KEYS and not NAIVE.match(actual):
            return [f"{path}: {actual!r} is not a naive timestamp"]
        if key == "openingDate" and not DAY.match(actual):
            return [f"{path}: {actual!r} is not a date"]
        if key == "amount" and not MONEY.match(actual):
            return [f"{path}: {actual!r} is not a money string"]
    return []


def assert_shape(actual, example, nullable=frozenset()):
    problems = mismatches(actual, example, nullable=frozenset(nullable))
    assert not problems, "\n".join(problems[:10])
