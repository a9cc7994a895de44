from django.urls import path

from consents.apis import BankListApi, BankStatusApi, ConsentListApi, ConsentRevokeApi

urlpatterns = [
    # Banks and the user's connection and consents at each (issue 4).
    path("banks", BankListApi.as_view(), name="bank-list"),
    path("banks/<str:bank_code>/status", BankStatusApi.as_view(), name="bank-status"),
    path("consents", ConsentListApi.as_view(), name="consent-list"),
    path("consents/<int:consent_id>/revoke", ConsentRevokeApi.as_view(), name="consent-revoke"),
    # consents/<id>/approve-demo (consent-approve-demo), banks/<code>/consents/renew and
    # banks/<code>/consents/request-again (they answer like a connect): users/onboarding/urls.py.
]
