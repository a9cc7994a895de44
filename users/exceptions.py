from fintrack.core.exceptions import ApplicationError, Conflict


class IdentifierTaken(Conflict):
    code = "identifier_taken"
    default_message = "A user with this email or phone already exists."


class InvalidCredentials(ApplicationError):
    code = "invalid_credentials"
    http_status = 401
    default_message = "Email/phone or password is incorrect."


class WrongPassword(ApplicationError):
    """The password the user confirmed an action with is not theirs: nothing was changed."""

    code = "wrong_password"
    http_status = 400
    default_message = "The password is not correct; nothing was changed."
