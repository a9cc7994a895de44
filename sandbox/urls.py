"""Sandbox banks under /sandbox/<bank>/… (their APIs and each bank's own app under …/app/) and
the control API under /sandbox/_control/…."""

from django.urls import include, path, re_path

from sandbox.http import detail
from sandbox.views import accounts, app, auth, consents, control, products
from sandbox.views.common import bank_view


@bank_view("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
def not_found(request, bank, **kwargs):
    return detail(404, "Not Found")


bank_patterns = [
    path("", auth.root),
    path("health", auth.health),
    path("auth/bank-token", auth.bank_token),
    path("auth/login", auth.login),
    path("account-consents/request", consents.consent_request),
    path("account-consents/sign", consents.consent_sign),
    path("account-consents/<str:request_id>/authorize", consents.consent_authorize),
    path("account-consents/<str:consent_id>", consents.consent_detail),
    path("accounts", accounts.account_list),
    path("accounts/<str:account_id>", accounts.account_detail),
    path("accounts/<str:account_id>/balances", accounts.account_balances),
    path("accounts/<str:account_id>/transactions", accounts.account_transactions),
    path("products", products.product_list),
    path("products/<str:product_id>", products.product_detail),
    path("product-agreement-consents/request", products.product_consent_request),
    path("product-agreement-consents/sign", products.product_consent_sign),
    path("product-agreement-consents/<str:consent_id>", products.product_consent_detail),
    path("product-agreements", products.agreement_list),
    path("product-agreements/<str:agreement_id>", products.agreement_detail),
    # The bank's own app (HTML, not API): the client approves its consent requests there.
    path("app/consents", app.consents_page),
    path("app/consents/<str:request_id>", app.consent_decide),
    re_path(r"^.*$", not_found),
]

BANK = r"^(?P<bank>vbank|abank|sbank)/"

control_patterns = [
    path("faults/<str:bank>", control.fault_switches),
    path("approval/<str:bank>", control.approval),
    path("clock", control.clock_control),
    path("volume/<str:client_id>", control.volume),
    path("reset", control.reset),
    path("truth/<str:bank>/<str:client_id>", control.truth),
]

urlpatterns = [
    path("_control/", include(control_patterns)),
    re_path(BANK, include(bank_patterns)),
]
