"""The catalogue and agreements steps of a sync: each makes its bank calls, then hands what it read
to banking.ingestion, which writes (upserts on the bank's ids, so a re-run changes nothing).

The accounts and balances steps are a call and a store each, made by the orchestrator
(sync.services); the transactions step is sync.reader.
"""

from banking.clients.types import BankAgreement
from banking.ingestion.products import agreements_prepare, agreements_store, catalogue_store
from banking.models import Account, BankConnection
from banking.services.products import products_catalogue_is_fresh


def catalogue_refresh_if_stale(*, client, bank_code: str) -> bool:
    """Refresh the bank's product catalogue when it is missing or older than
    PRODUCT_CATALOGUE_MAX_AGE_HOURS; whether it was read."""
    if products_catalogue_is_fresh(bank_code=bank_code):
        return False
    catalogue_store(bank_code=bank_code, products=client.list_products())
    return True


def agreements_list(*, client, client_id: str, product_consent_id: str) -> list[BankAgreement]:
    """The bank's list of the user's agreements (a bank call, nothing stored)."""
    return client.list_agreements(client_id=client_id, product_consent_id=product_consent_id)


def agreements_sync(
    *,
    client,
    connection: BankConnection,
    accounts: list[Account],
    client_id: str,
    product_consent_id: str,
    listed: list[BankAgreement] | None = None,
) -> int:
    """Read the user's agreements (a detail call for those the list leaves incomplete), store
    them; returns how many. `listed`: the list, already asked for (`agreements_list`): a loan's
    remaining balance is its account's, so the list may be read beside the balances and stored
    once they are."""
    bank_agreements = (
        listed
        if listed is not None
        else agreements_list(
            client=client, client_id=client_id, product_consent_id=product_consent_id
        )
    )
    drafts = agreements_prepare(
        connection=connection, accounts=accounts, bank_agreements=bank_agreements
    )
    for draft in drafts:
        if draft.needs_detail:
            draft.complete(
                client.get_agreement(
                    client_id=client_id,
                    agreement_id=draft.agreement.agreement_id,
                    product_consent_id=product_consent_id,
                )
            )
    return agreements_store(connection=connection, drafts=drafts)
