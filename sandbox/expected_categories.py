"""What FinTrack's categories should make of each kind of row the live-style sandbox generates.

The truth of categorisation, as sandbox.money_truth is the truth of the money: keyed by
`Record.kind` (and `kind:Record.reference` for purchases and bills), read by the categorisation
tests and by bench/categories.py.
"""

MEANT_CATEGORY = {
    "salary": "salary",
    "pension": "salary",  # described "Доход", like a salary
    "irregular": "salary",  # odd jobs, described "Доход"
    "business": "business_income",
    "interest": "interest",
    "loan_instalment": "loan_payments",
    "loan_repayment": "loan_payments",
    "own_transfer": "transfers",
    "travel": "travel",
    "refund": "refunds",
    "everyday:grocery": "groceries",
    "everyday:restaurant": "restaurants",
    "everyday:weekly_restaurant": "restaurants",
    "everyday:online_retail": "shopping",
    "everyday:clothing": "shopping",
    "everyday:transport": "transport",
    "everyday:pharmacy": "health",
    "bill:telecom": "utilities",
    "bill:utilities": "utilities",
    "bill:rent": "utilities",
    "bill:subscription": "entertainment",
}
MEANT_INCOME_KIND = {
    "salary": "salary",
    "pension": "salary",
    "irregular": "salary",
    "business": "business",
    "interest": "interest",
    "refund": "refund",
    "own_transfer": "own_transfer",
}
