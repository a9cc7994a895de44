from django.urls import include, path

from users import apis

urlpatterns = [
    path("auth/register", apis.RegisterApi.as_view(), name="auth-register"),
    path("auth/login", apis.LoginApi.as_view(), name="auth-login"),
    path("auth/refresh", apis.RefreshApi.as_view(), name="auth-refresh"),
    path("auth/logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/me", apis.MeApi.as_view(), name="auth-me"),
    path("auth/me/export", apis.MeExportApi.as_view(), name="auth-me-export"),
    path("auth/password", apis.PasswordChangeApi.as_view(), name="auth-password"),
    # Onboarding, connecting a bank, and the demo approval of its consent.
    path("", include("users.onboarding.urls")),
]
