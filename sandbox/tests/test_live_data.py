"""The live data style (SPEC §17) pinned at the HTTP level: one test per quirk of the real banks.

Every assertion reads JSON the sandbox views serve (team token + consent, like FinTrack), for
several clients. The money these rows carry is checked in test_money_truth.py.
"""

import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from sandbox import catalog, live, personas
from sandbox.ground_truth import client_bank_truth
from sandbox.money_truth import client_money_truth
from sandbox.tests.conftest import FROZEN_AT

BANKS = catalog.BANK_CODES
CLIENTS = [f"team260-{n}" for n in range(1, 11)]
CARD_NUMBER = re.compile(r"\*{4}\d{4}")
MCC = re.compile(r"\d{4}")


def _emoji(text: str) -> bool:
    """True when `text` holds a pictograph (the examples style's "💼 Зарплата" and the like)."""
    return any(ord(ch) >= 0x1F000 or 0x2600 <= ord(ch) <= 0x27BF for ch in text)


def _when(tx: dict) -> datetime:
    return datetime.fromisoformat(tx["bookingDateTime"])


def _day(tx: dict) -> date:
    return _when(tx).date()  # UTC, as served


def _amount(item: dict) -> Decimal:
    return Decimal(item["amount"]["amount"])


class Client:
    """Everything one client's banks serve over HTTP: accounts, rows, agreements, balances."""

    def __init__(self, bank, client_id: str):
        self.client_id = client_id
        self.banks = {}
        for code in BANKS:
            b = bank(code)
            headers = b.interbank(b.consent(client_id))
            response = b.get("/accounts", headers=headers, client_id=client_id)
            assert response.status_code == 200, response.content
            accounts = response.json()["data"]["account"]
            product_headers = {
                **b.auth(),
                "X-Requesting-Bank": b.team,
                "X-Product-Agreement-Consent-Id": b.product_consent(client_id),
            }
            response = b.get("/product-agreements", headers=product_headers, client_id=client_id)
            assert response.status_code == 200, response.content
            self.banks[code] = {
                "bank": b,
                "headers": headers,
                "product_headers": product_headers,
                "accounts": accounts,
                "agreements": response.json()["data"],
            }

    def accounts(self, code: str) -> list[dict]:
        return self.banks[code]["accounts"]

    def checking(self, code: str) -> dict:
        return next(a for a in self.accounts(code) if a["accountSubType"] == "Checking")

    def agreements(self, code: str) -> list[dict]:
        return self.banks[code]["agreements"]

    def rows(self, code: str, account_id: str | None = None) -> list[dict]:
        """Every row of the account (default: the checking one), each once (pages may repeat a
        tied row; several page sizes together read them all)."""
        side = self.banks[code]
        if account_id is None:
            if not side["accounts"]:
                return []
            account_id = self.checking(code)["accountId"]
        cache = side.setdefault("rows", {})
        if account_id not in cache:
            seen = {}
            for limit in (100, 97, 89):
                for tx in side["bank"].all_transactions(account_id, side["headers"], limit=limit):
                    seen.setdefault(tx["transactionId"], tx)
            response = side["bank"].get(f"/accounts/{account_id}/transactions",
                                        headers=side["headers"], limit=1)  # fmt: skip
            assert len(seen) == response.json()["meta"]["totalRecords"]  # every row read
            cache[account_id] = sorted(seen.values(), key=_when, reverse=True)
        return cache[account_id]

    def all_rows(self) -> list[dict]:
        return [tx for code in BANKS for tx in self.rows(code)]

    def balance(self, code: str, account_id: str) -> Decimal:
        side = self.banks[code]
        response = side["bank"].get(f"/accounts/{account_id}/balances", headers=side["headers"])
        assert response.status_code == 200, response.content
        return _amount(response.json()["data"]["balance"][0])

    def detail(self, code: str, agreement_id: str) -> dict:
        side = self.banks[code]
        response = side["bank"].get(f"/product-agreements/{agreement_id}",
                                    headers=side["product_headers"],
                                    client_id=self.client_id)  # fmt: skip
        assert response.status_code == 200, response.content
        return response.json()["data"]


def _clients(bank, *numbers: int) -> list[Client]:
    return [Client(bank, f"team260-{n}") for n in numbers]


# --- transactions ---------------------------------------------------------------------------


def test_rows_are_completed_with_codes_01_02_and_no_counterparty(bank):
    for client in _clients(bank, 1, 2, 3, 5, 8):
        rows = client.all_rows()
        assert len(rows) > 300, client.client_id
        assert {tx["status"] for tx in rows} == {"completed"}
        for tx in rows:
            code = tx["bankTransactionCode"]["code"]
            assert code == ("02" if tx["creditDebitIndicator"] == "Credit" else "01"), tx
            assert tx["counterparty"] is None
            assert tx["valueDateTime"] == tx["bookingDateTime"]
            assert tx["bookingDateTime"].endswith("Z")


def test_card_and_location_are_on_most_rows(bank):
    for client in _clients(bank, 1, 2, 3, 5):
        rows = client.all_rows()
        with_card = [tx for tx in rows if tx["card"] is not None]
        located = [tx for tx in rows if tx["transactionLocation"] is not None]
        assert len(with_card) / len(rows) > 0.6, client.client_id
        assert len(located) / len(rows) > 0.6, client.client_id
        for tx in with_card:
            assert set(tx["card"]) == {"cardId", "cardNumber", "cardType", "cardName"}
            assert CARD_NUMBER.fullmatch(tx["card"]["cardNumber"]), tx["card"]
            assert tx["card"]["cardId"].startswith("card-")
            assert tx["card"]["cardType"] in ("debit", "credit")
        for tx in located:
            assert set(tx["transactionLocation"]) == {"city", "country"}
            assert tx["transactionLocation"]["city"] in ("Москва", "Новосибирск")
            assert tx["transactionLocation"]["country"] == "RUS"


def test_main_income_of_a_salaried_client_reads_dokhod(bank):
    (client,) = _clients(bank, 1)
    incomes = [tx for tx in client.all_rows() if tx["transactionInformation"] == "Доход"]
    assert len(incomes) >= 20  # twice a month for a year
    assert all(tx["creditDebitIndicator"] == "Credit" for tx in incomes)
    assert all(tx["merchant"] is None and tx["card"] is None for tx in incomes)


def test_business_income_arrives_every_1_to_6_days_in_varying_amounts(bank):
    (client,) = _clients(bank, 2)
    rows = [tx for tx in client.all_rows() if tx["transactionInformation"] == "Доход от бизнеса"]
    assert len(rows) > 60
    assert all(tx["creditDebitIndicator"] == "Credit" for tx in rows)
    days = sorted({_day(tx) for tx in rows})
    assert len(days) == len(rows)  # one receipt a day at most
    gaps = [(later - earlier).days for earlier, later in pairwise(days)]
    assert set(gaps) <= set(range(1, 7))
    assert len(set(gaps)) >= 4  # irregular, not a fixed cadence
    assert len({tx["amount"]["amount"] for tx in rows}) > len(rows) * 0.9


def test_deposit_interest_is_credited_monthly_per_deposit(bank):
    (client,) = _clients(bank, 3)
    deposits = {a["agreement_id"]: (code, a) for code in BANKS for a in client.agreements(code)
                if a["product_type"] == "deposit"}  # fmt: skip
    assert len(deposits) == 10
    by_deposit = defaultdict(list)
    for code in BANKS:
        for tx in client.rows(code):
            info = tx["transactionInformation"]
            if info.startswith("Проценты по депозиту №"):
                agreement_id = info.removeprefix("Проценты по депозиту №")
                assert agreement_id.startswith("dep-")
                assert deposits[agreement_id][0] == code  # credited where the deposit is
                assert tx["creditDebitIndicator"] == "Credit"
                by_deposit[agreement_id].append(tx)
    assert set(by_deposit) == set(deposits)  # every deposit pays
    for agreement_id, rows in by_deposit.items():
        months = sorted(_day(tx).year * 12 + _day(tx).month for tx in rows)
        assert months == list(range(months[0], months[0] + len(months))), agreement_id
        assert len({tx["amount"]["amount"] for tx in rows}) == 1  # the same sum every month
        assert len({_day(tx).day for tx in rows}) <= 3  # one day of the month (clamped)


def _instalments(client: Client, code: str) -> dict[str, dict[tuple, list[dict]]]:
    """agreement id → (year, month) → its "Платеж по кредиту №…" debits at `code`."""
    found = defaultdict(lambda: defaultdict(list))
    for tx in client.rows(code):
        info = tx["transactionInformation"]
        if info.startswith("Платеж по кредиту №"):
            assert tx["creditDebitIndicator"] == "Debit"
            assert tx["merchant"] is None
            month = (_day(tx).year, _day(tx).month)
            found[info.removeprefix("Платеж по кредиту №")][month].append(tx)
    return found


def test_loan_instalments_split_in_equal_parts_over_the_first_days_of_a_month(bank):
    one, ten = _clients(bank, 1, 10)
    for client, code, parts, spread in ((one, "vbank", 2, 0), (ten, "sbank", 3, 2)):
        (loan_id,) = [a["agreement_id"] for a in client.agreements(code)
                      if a["product_type"] == "loan"]  # fmt: skip
        months = _instalments(client, code)[loan_id]
        assert len(months) >= 10, client.client_id
        amounts = set()
        for month, rows in months.items():
            assert sorted(_day(tx).day for tx in rows) == list(range(1, parts + 1)), month
            cents = sorted(int(_amount(tx) * 100) for tx in rows)
            assert cents[-1] - cents[0] <= spread  # equal, bar the kopecks of the division
            amounts.add(sum(cents))
        assert len(amounts) == 1  # one monthly instalment, every month


def test_travel_debits_have_no_merchant(bank):
    for client in _clients(bank, 1, 3):
        travel = [tx for tx in client.all_rows() if tx["transactionInformation"] == "Путешествия"]
        assert travel, client.client_id
        for tx in travel:
            assert tx["merchant"] is None
            assert tx["creditDebitIndicator"] == "Debit"
            assert _amount(tx) >= 25000


def test_card_purchases_read_merchant_dash_city_with_a_merchant_object(bank):
    categories, mccs = Counter(), Counter()
    for client in _clients(bank, 1, 2, 3, 5):
        purchases = [tx for tx in client.all_rows() if tx["merchant"] is not None]
        assert len(purchases) > 100, client.client_id
        for tx in purchases:
            name, _, where = tx["transactionInformation"].partition(" - ")
            assert name == tx["merchant"]["name"], tx
            assert where == tx["merchant"]["city"] == tx["transactionLocation"]["city"]
            assert MCC.fullmatch(tx["merchant"]["mccCode"])
            assert tx["merchant"]["country"] == "RUS"
            assert tx["card"] is not None
            categories[tx["merchant"]["category"]] += 1
            mccs[tx["merchant"]["mccCode"]] += 1
    assert {"online_retail", "clothing", "restaurant", "grocery"} <= set(categories)
    assert {"5411", "5812", "5999", "5651"} <= set(mccs)


def test_no_emoji_anywhere(bank):
    for client in _clients(bank, *range(1, 11)):
        for code in BANKS:
            texts = [tx["transactionInformation"] for tx in client.rows(code)]
            texts += [a["product_name"] for a in client.agreements(code)]
            texts += [a["nickname"] for a in client.accounts(code)]
            assert not [text for text in texts if _emoji(text)], (client.client_id, code)


def test_booking_times_tie_and_total_records_is_the_true_count(bank):
    ties = {}
    for client in _clients(bank, 1, 3):
        for code in BANKS:
            if not client.accounts(code):
                continue
            account_id = client.checking(code)["accountId"]
            side = client.banks[code]
            body = side["bank"].get(f"/accounts/{account_id}/transactions",
                                    headers=side["headers"], limit=100).json()  # fmt: skip
            truth = client_bank_truth(client.client_id, code)["transactions"][account_id]
            distinct = {tx["transactionId"] for tx in truth}
            assert len(distinct) == len(truth)
            assert body["meta"]["totalRecords"] == len(distinct)
            assert {tx["transactionId"] for tx in client.rows(code)} == distinct
            stamps = Counter(tx["bookingDateTime"] for tx in truth)
            ties[client.client_id, code] = [n for n in stamps.values() if n > 1], len(truth)
    # The saver's busy checking: most rows share their instant with others, up to 5 at once.
    groups, total = ties["team260-3", "vbank"]
    assert len(groups) > 200
    assert max(groups) >= 4
    assert sum(groups) > 0.5 * total
    groups, total = ties["team260-1", "vbank"]
    assert len(groups) >= 20
    assert max(groups) >= 3


# --- identifiers ------------------------------------------------------------------------------


def test_account_ids_repeat_across_banks(bank):
    for client in _clients(bank, 1, 2, 3):
        ids = [client.checking(code)["accountId"] for code in BANKS if client.accounts(code)]
        assert len(ids) >= 2
        assert len(set(ids)) == 1, client.client_id
        assert re.fullmatch(r"acc-\d{4}", ids[0])
        numbers = {client.checking(code)["account"][0]["identification"]
                   for code in BANKS if client.accounts(code)}  # fmt: skip
        assert len(numbers) == len(ids)  # the account numbers still differ


def test_agreement_ids_repeat_across_banks(bank):
    (client,) = _clients(bank, 8)
    loans = {code: {a["agreement_id"]: a for a in client.agreements(code)
                    if a["product_type"] == "loan"} for code in BANKS}  # fmt: skip
    shared = set(loans["vbank"]) & set(loans["abank"])
    assert len(shared) == 1
    (loan_id,) = shared
    assert re.fullmatch(r"loan-team260-8-\d{4}", loan_id)
    assert loans["vbank"][loan_id]["status"] == "active"
    assert loans["abank"][loan_id]["status"] == "closed"
    assert loans["vbank"][loan_id]["product_id"] != loans["abank"][loan_id]["product_id"]


# --- agreements -------------------------------------------------------------------------------


def test_agreement_account_numbers_point_at_checking_at_nothing_or_at_a_loan_account(bank):
    kinds = Counter()
    for client in _clients(bank, *range(1, 11)):
        for code in BANKS:
            numbers = {a["account"][0]["identification"]: a for a in client.accounts(code)}
            for agreement in client.agreements(code):
                number = agreement["account_number"]
                if number is None:
                    kinds["none"] += 1
                elif numbers[number]["accountSubType"] == "Checking":
                    assert number.startswith("40817")
                    kinds["checking"] += 1
                else:
                    assert numbers[number]["accountSubType"] == "Loan"
                    assert number.startswith("455")
                    kinds["loan"] += 1
    assert kinds["checking"] >= 10
    assert kinds["none"] >= 10
    assert 1 <= kinds["loan"] <= 3


def test_mortgage_points_at_a_real_loan_account_whose_balance_is_the_outstanding(bank):
    (client,) = _clients(bank, 1)
    (mortgage,) = [a for a in client.agreements("vbank") if a["product_type"] == "loan"]
    (account,) = [a for a in client.accounts("vbank")
                  if a["account"][0]["identification"] == mortgage["account_number"]]  # fmt: skip
    assert account["accountSubType"] == "Loan"
    assert account["accountType"] == "Business"
    assert mortgage["account_number"].startswith("455")
    truth = client_money_truth(client.client_id, now=FROZEN_AT)
    (loan,) = [x for x in truth["loans"] if x["agreement_id"] == mortgage["agreement_id"]]
    outstanding = Decimal(loan["outstanding"])
    assert outstanding > Decimal("1000000")
    assert client.balance("vbank", account["accountId"]) == outstanding
    detail = client.detail("vbank", mortgage["agreement_id"])
    assert Decimal(str(detail["account_balance"])) == outstanding
    assert client.rows("vbank", account["accountId"]) == []  # no history on a loan account


def test_end_date_is_null_on_most_agreements(bank):
    agreements = [a for client in _clients(bank, *range(1, 11)) for code in BANKS
                  for a in client.agreements(code)]  # fmt: skip
    assert len(agreements) >= 25
    dated = [a for a in agreements if a["end_date"] is not None]
    assert 1 <= len(dated) <= len(agreements) * 0.1
    assert all(a["product_type"] == "loan" for a in dated)  # the mortgage


def test_interest_rate_only_in_the_detail_whose_balance_is_the_checking_balance(bank):
    for client in _clients(bank, 2, 3, 5):
        linked = 0
        for code in BANKS:
            checking = {
                a["account"][0]["identification"]: a["accountId"]
                for a in client.accounts(code)
                if a["accountSubType"] == "Checking"
            }
            for agreement in client.agreements(code):
                assert "interest_rate" not in agreement
                assert "account_balance" not in agreement
                detail = client.detail(code, agreement["agreement_id"])
                assert isinstance(detail["interest_rate"], float)
                assert {k: detail[k] for k in agreement} == agreement
                if agreement["account_number"] in checking:
                    balance = client.balance(code, checking[agreement["account_number"]])
                    assert Decimal(str(detail["account_balance"])) == balance
                    linked += 1
                elif agreement["account_number"] is None:
                    assert detail["account_balance"] is None
        assert linked >= 1, client.client_id


def test_credit_cards_are_product_type_card_with_the_limit_as_amount(bank):
    credit = debit = 0
    for client in _clients(bank, 1, 4, 5):
        truth = client_money_truth(client.client_id, now=FROZEN_AT)
        limits = {
            (c["bank"], c["agreement_id"]): Decimal(c["limit"]) for c in truth["credit_cards"]
        }
        assert limits, client.client_id
        for code in BANKS:
            for agreement in client.agreements(code):
                agreement_id = agreement["agreement_id"]
                if agreement_id.startswith("card-cred-"):
                    assert agreement["product_type"] == "card"
                    assert re.fullmatch(r'Кредитная карта "[^"]+"', agreement["product_name"])
                    assert Decimal(str(agreement["amount"])) == limits.pop((code, agreement_id))
                    assert client.detail(code, agreement_id)["interest_rate"] > 0
                    assert agreement["account_number"] is None
                    credit += 1
                elif agreement_id.startswith("card-deb-"):
                    assert agreement["product_type"] == "card"
                    assert agreement["product_name"].startswith('Дебетовая карта "')
                    debit += 1
                assert agreement["product_type"] != "credit_card"
        assert limits == {}  # every credit card of the model is served
    assert credit >= 4
    assert debit >= 1


def test_deposits_have_no_deposit_account(bank):
    for client in _clients(bank, 1, 3, 6):
        deposits = [a for code in BANKS for a in client.agreements(code)
                    if a["product_type"] == "deposit"]  # fmt: skip
        assert deposits, client.client_id
        assert all(re.fullmatch(r"dep-team260-\d+-\d{4}", a["agreement_id"]) for a in deposits)
        subtypes = {a["accountSubType"] for code in BANKS for a in client.accounts(code)}
        assert subtypes <= {"Checking", "Loan"}
    (saver,) = _clients(bank, 3)
    total = sum(Decimal(str(a["amount"])) for code in BANKS for a in saver.agreements(code)
                if a["product_type"] == "deposit")  # fmt: skip
    assert total > Decimal("10000000")  # tens of millions in ten deposits


def test_instalments_arrive_at_a_bank_that_serves_no_such_agreement(bank):
    (client,) = _clients(bank, 2)
    at_sbank = _instalments(client, "sbank")
    assert len(at_sbank) == 1
    ((loan_id, months),) = at_sbank.items()
    assert len(months) >= 10
    served = {a["agreement_id"] for code in BANKS for a in client.agreements(code)}
    assert loan_id not in served
    assert not [a for a in client.agreements("sbank") if a["product_type"] == "loan"]
    # …while the ABank loan is both served and paid there.
    (abank_loan,) = [a for a in client.agreements("abank") if a["product_type"] == "loan"]
    assert abank_loan["agreement_id"] in _instalments(client, "abank")


def test_frozen_client_has_no_rows_in_the_last_14_days_but_balances(bank):
    (client,) = _clients(bank, 7)
    rows = client.all_rows()
    assert len(rows) > 200
    latest = max(_when(tx) for tx in rows)
    assert latest < FROZEN_AT - timedelta(days=14)
    assert latest > FROZEN_AT - timedelta(days=16)  # it ran until then
    for code in BANKS:
        for account in client.accounts(code):
            assert client.balance(code, account["accountId"]) > 0
    assert sum(bool(client.accounts(code)) for code in BANKS) >= 2


def _snapshot(bank, client_id: str) -> list:
    client = Client(bank, client_id)
    return [(code, client.accounts(code), client.agreements(code), client.rows(code))
            for code in BANKS]  # fmt: skip


def test_client_numbers_above_ten_are_served_and_deterministic(bank):
    first = _snapshot(bank, "team260-23")
    assert sum(bool(accounts) for _code, accounts, _a, _r in first) >= 2
    assert all(accounts[0]["accountId"] == "acc-0230" for _c, accounts, _a, _r in first if accounts)
    assert sum(len(rows) for *_rest, rows in first) > 300
    # Archetype ((23 - 1) % 10) + 1 = 3 (the saver) with amounts of its own.
    assert {a["product_type"] for *_x, agreements, _r in first for a in agreements} >= {"deposit"}
    for cached in (personas.persona, live.live_bank, live.day_records, live._settled_prefix,
                   live.gap_dates):  # fmt: skip
        cached.cache_clear()
    assert _snapshot(bank, "team260-23") == first
    saver = _snapshot(bank, "team260-3")
    assert [x[2] for x in saver] != [x[2] for x in first]


def test_examples_style_stays_available(bank, settings):
    settings.SANDBOX_DATA_STYLE = "examples"
    b = bank("vbank")
    headers = b.interbank(b.consent("team260-1"))
    accounts = b.get("/accounts", headers=headers, client_id="team260-1").json()["data"]["account"]
    checking = next(a for a in accounts if a["accountSubType"] == "Checking")
    assert re.fullmatch(r"acc-1\d{5}", checking["accountId"])
    rows = b.all_transactions(checking["accountId"], headers)
    assert sum(tx["status"] == "Booked" for tx in rows) > len(rows) / 2
    assert any(_emoji(tx["transactionInformation"]) for tx in rows)
    assert catalog.SALARY in {tx["transactionInformation"] for tx in rows}
    # … and back to the live style.
    settings.SANDBOX_DATA_STYLE = "live"
    accounts = b.get("/accounts", headers=headers, client_id="team260-1").json()["data"]["account"]
    assert accounts[0]["accountId"] == "acc-0010"
