"""Authentication by email or phone with a password."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError

from users.normalize import normalize_email, normalize_phone


class EmailOrPhoneBackend(ModelBackend):
    """`username` may be an email or a phone number; both are normalised before lookup."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        identifier = username or kwargs.get("email") or kwargs.get("phone")
        if not identifier or password is None:
            return None
        User = get_user_model()
        try:
            if "@" in identifier:
                user = User.objects.get(email=normalize_email(identifier))
            else:
                user = User.objects.get(phone=normalize_phone(identifier))
        except (User.DoesNotExist, ValidationError):
            # Run the hasher anyway so timing does not reveal which identifiers exist.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
