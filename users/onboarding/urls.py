"""Connect and onboarding URLs (mounted under /api/ by users/urls.py)."""

from django.urls import path

from users.onboarding import apis

urlpatterns = [
    path("onboarding/start", apis.OnboardingStartApi.as_view(), name="onboarding-start"),
    path("onboarding/status", apis.OnboardingStatusApi.as_view(), name="onboarding-status"),
    path("banks/<str:bank_code>/connect", apis.BankConnectApi.as_view(), name="bank-connect"),
    path(
        "banks/<str:bank_code>/consents/renew",
        apis.BankConsentsRenewApi.as_view(),
        name="bank-consents-renew",
    ),
    path(
        "banks/<str:bank_code>/consents/request-again",
        apis.BankConsentsRequestAgainApi.as_view(),
        name="bank-consents-request-again",
    ),
    path(
        "connect-requests/<int:connect_request_id>",
        apis.ConnectRequestApi.as_view(),
        name="connect-request-detail",
    ),
    path(
        "consents/<int:consent_id>/approve-demo",
        apis.ConsentApproveDemoApi.as_view(),
        name="consent-approve-demo",
    ),
]
