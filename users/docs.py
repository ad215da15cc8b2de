"""What the users operations answer besides their output, for the OpenAPI
document: each operation's error responses with their examples, and the
headers and path examples it shows. The views take them by name."""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from servicekit.apidocs import BEARER_AUTH, invalid_input_doc, path_examples, problem_doc
from servicekit.auth import TOKEN_WILL_NOT_DO
from servicekit.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed

from . import Config, domain
from .throttling import Limits, Quota, TooManyFailures

# users checks tokens itself (no neighbour to be down): without a valid one, 401.
TAKES_TOKEN = {401: TOKEN_WILL_NOT_DO}
ADMINS_ONLY = {
    **TAKES_TOKEN,
    403: problem_doc("The caller is not an administrator.", Forbidden(domain.ONLY_ADMINS)),
}
# The token in the Authorization header, or else in the body: the header is optional.
TOKEN_IN_HEADER_OR_BODY: list[str | dict[str, list[Any]]] = [{BEARER_AUTH: []}, {}]
# (Retry-After on 429 and 503 the spec processor adds to every operation.)
PASSWORDS_BUSY = problem_doc(
    "Too many passwords are being checked at once; try again.",
    domain.PasswordsBusy(),
    service={"type": "string", "enum": ["users"]},
)
RATE_LIMIT_HEADERS = {
    "RateLimit-Policy": {
        "description": 'The per-username login limit: `"login";q=10;w=600` (10 failures '
        "in 600 s), after draft-ietf-httpapi-ratelimit-headers-10.",
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": "Failures this username may still have from this address, and the "
        'seconds until its oldest counted failure is forgotten: `"login";r=7;t=540`.',
        "schema": {"type": "string"},
    },
}
NEW_TOKEN_HEADERS = {
    "Cache-Control": fields.String(metadata={"description": "no-store: it is a secret."}),
    **{
        name: fields.String(metadata={"description": header["description"]})
        for name, header in RATE_LIMIT_HEADERS.items()
    },
}
TOTAL_COUNT = {"X-Total-Count": fields.Integer(metadata={"description": "Matches on all pages."})}


def _example_quota(*, remaining: int = 0, wait_seconds: int | None = None) -> Quota:
    """Where a username stands, for the documents' examples, with users' default limits."""
    limits = Limits(
        Config.LOGIN_MAX_FAILURES,
        Config.LOGIN_MAX_FAILURES_PER_ADDRESS,
        Config.LOGIN_WINDOW_SECONDS,
    )
    return Quota(limits, remaining=remaining, reset_seconds=540, wait_seconds=wait_seconds)


THROTTLED = {
    **problem_doc(
        "Too many failed logins of this username from this address (or from this "
        "address at all) within the window: the password was not checked.",
        TooManyFailures(_example_quota(wait_seconds=540)),
    ),
    "headers": RATE_LIMIT_HEADERS,
}
WRONG_PASSWORD_HEADERS = {"headers": RATE_LIMIT_HEADERS}
EMAIL_TAKEN = problem_doc(
    "The email is someone else's (whatever the case).",
    Conflict("Already taken: email.", errors={"email": ["Already taken."]}),
)
NO_SUCH_USER = problem_doc("No user has this id.", NotFound("No user has id 7."))
USER_ID_IN_PATH = path_examples(user_id=1)

REGISTER = {
    400: invalid_input_doc("password", "Too common: one of the 10000 most used passwords."),
    409: problem_doc(
        "The username or email is taken (whatever the case).",
        Conflict("Already taken: username.", errors={"username": ["Already taken."]}),
    ),
    503: PASSWORDS_BUSY,
}
EXISTS = {
    400: invalid_input_doc("username", "Missing data for required field."),
    404: problem_doc(
        "No user has this username.",
        NotFound("No user is called petar.", username="petar", exists=False),
        username={"type": "string"},
        exists={"type": "boolean", "enum": [False]},
    ),
}
LOGIN = {
    400: invalid_input_doc("password", "Missing data for required field."),
    401: {
        **problem_doc(
            "Wrong username or password (one answer for both); the failure is counted.",
            Unauthorized("Wrong username or password."),
        ),
        "headers": RATE_LIMIT_HEADERS,
    },
    429: THROTTLED,
    503: PASSWORDS_BUSY,
}
CHANGE_ME = {
    **TAKES_TOKEN,
    400: problem_doc(
        "Invalid input, or nothing to change.",
        ValidationFailed({"email": ["Not a valid email address."]}),
        ValidationFailed({"body": ["Send at least one of email, first_name and last_name."]}),
    ),
    409: EMAIL_TAKEN,
}
CHANGE_MY_PASSWORD = {
    **TAKES_TOKEN,
    400: {
        **problem_doc(
            "Invalid input, or a wrong current password (counted as a failed login).",
            domain.WrongPassword("current_password"),
            ValidationFailed(
                {"new_password": ["Too common: one of the 10000 most used passwords."]}
            ),
        ),
        **WRONG_PASSWORD_HEADERS,
    },
    429: THROTTLED,
    503: PASSWORDS_BUSY,
}
DELETE_ME = {
    **TAKES_TOKEN,
    400: {
        **problem_doc(
            "Invalid input, or a wrong password (counted as a failed login).",
            domain.WrongPassword("password"),
        ),
        **WRONG_PASSWORD_HEADERS,
    },
    409: problem_doc("You are the last administrator.", domain.last_admin_leaving()),
    429: THROTTLED,
    503: PASSWORDS_BUSY,
}
LIST_USERS = {
    **ADMINS_ONLY,
    400: invalid_input_doc(
        "limit", "Must be greater than or equal to 1 and less than or equal to 1000."
    ),
}
GET_USER = {**ADMINS_ONLY, 404: NO_SUCH_USER}
CHANGE_USER = {
    **ADMINS_ONLY,
    400: invalid_input_doc("is_admin", "Missing data for required field."),
    404: NO_SUCH_USER,
    409: problem_doc("No administrator would be left.", domain.no_admin_left()),
}
