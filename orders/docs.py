"""What the orders operations answer besides their output, for the OpenAPI
document: each operation's error responses with their examples, and the
headers and path examples it shows. Every operation takes a token: 401, and 503
when users is down (servicekit.auth.USER_RESPONSES), come with each table."""

from __future__ import annotations

from decimal import Decimal

from marshmallow import fields

from servicekit.apidocs import (
    ResponseDoc,
    header_parameters,
    path_examples,
    problem_doc,
    unavailable_doc,
)
from servicekit.auth import USER_RESPONSES
from servicekit.errors import Conflict, Forbidden, NotFound, ValidationFailed

from . import domain
from .idempotency import HEADER, KeyInUse, KeyReused

IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": "Makes the request safe to retry: the same key with the same request "
    "gets the first answer again, and nothing runs twice. 1 to 255 printable ASCII "
    "characters.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    "example": "order-2026-12-01-0001",
}
IDEMPOTENT = header_parameters(IDEMPOTENCY_KEY_PARAMETER)  # the operations that take the key
ONLY_ADMINS_LIST_OTHERS = "Only administrators may list another user's orders (user_id)."
CATALOGUE_DOWN = unavailable_doc("users", "beers")
BAD_KEY = ValidationFailed({HEADER: ["1 to 255 printable ASCII characters."]})
KEY_REUSED = problem_doc("This Idempotency-Key was used for a different request.", KeyReused())
NOT_IN_CATALOGUE = problem_doc(
    "The SKU is not in the catalogue.",
    NotFound("No beer has SKU 999999.", errors={"sku": ["Not in the catalogue."]}),
)


def invalid_input_or_key(example: ValidationFailed) -> ResponseDoc:
    """400 of an idempotent operation: its own bad input, or a bad key."""
    return problem_doc(
        "Invalid input, or an Idempotency-Key that is not 1 to 255 printable ASCII characters.",
        example,
        BAD_KEY,
    )


REPLAYED = {
    "Idempotent-Replayed": fields.String(
        metadata={
            "description": "`true` when this is the kept answer of an earlier request "
            "with the same Idempotency-Key."
        }
    )
}
TOTAL_COUNT = {
    "X-Total-Count": fields.Integer(
        metadata={"description": "The user's orders on all pages.", "example": 1}
    )
}
SKU_IN_PATH = {**IDEMPOTENT, **path_examples(sku="123456")}
ORDER_ID_IN_PATH = path_examples(order_id=1)

LIST_ORDERS = {
    **USER_RESPONSES,
    400: problem_doc(
        "Invalid input",
        ValidationFailed(
            {"limit": ["Must be greater than or equal to 1 and less than or equal to 1000."]}
        ),
    ),
    403: problem_doc(
        "`user_id` was sent by someone who is not an administrator.",
        Forbidden(ONLY_ADMINS_LIST_OTHERS),
    ),
}
CURRENT_ORDER = USER_RESPONSES
ADD_BEER = {
    **USER_RESPONSES,
    400: invalid_input_or_key(
        ValidationFailed(
            {"quantity": ["Must be greater than or equal to 1 and less than or equal to 10000."]}
        )
    ),
    404: NOT_IN_CATALOGUE,
    409: problem_doc(
        "The line would hold more than 100000 of the beer (the order is unchanged), "
        "or the order changed too often at once (very rare; try again), or the first "
        "request with this Idempotency-Key is still running.",
        Conflict(
            f"An order holds at most {domain.MAX_LINE_QUANTITY} of a beer.",
            errors={"quantity": [f"The line would pass {domain.MAX_LINE_QUANTITY}."]},
        ),
        KeyInUse(),
    ),
    422: KEY_REUSED,
    503: CATALOGUE_DOWN,
}
SET_QUANTITY = {
    **USER_RESPONSES,
    400: invalid_input_or_key(
        ValidationFailed(
            {
                "quantity": [
                    "Must be greater than or equal to 1 and less than or equal to "
                    f"{domain.MAX_LINE_QUANTITY}."
                ]
            }
        )
    ),
    404: NOT_IN_CATALOGUE,
    409: problem_doc(
        "The order changed too often at once (very rare; try again), or the first "
        "request with this Idempotency-Key is still running.",
        Conflict("The order changed too often at once; try again."),
        KeyInUse(),
    ),
    422: KEY_REUSED,
    503: CATALOGUE_DOWN,
}
REMOVE_BEER = {
    **USER_RESPONSES,
    400: invalid_input_or_key(ValidationFailed({"sku": ["Missing data for required field."]})),
    409: problem_doc("The first request with this key is still running.", KeyInUse()),
    422: KEY_REUSED,
}
CHECKOUT = {
    **USER_RESPONSES,
    400: problem_doc(
        "A body: checkout takes none (each of its fields named in `errors`, "
        '"Unknown field."); or an Idempotency-Key that is not 1 to 255 printable '
        "ASCII characters. Neither claims the key.",
        BAD_KEY,
    ),
    409: problem_doc(
        "The open order is empty (or another request just checked it out); or some "
        "of its beers left the catalogue: they are named in `skus`, and the order "
        "stays open as it was; or some prices are no longer the ones the order "
        "showed: `errors` names those SKUs, `changed` lists what the order showed "
        "(`unit_price`) and what the catalogue asks now (`price`), and the open "
        "order now shows the catalogue's prices and, its lines changed, a new "
        "`time_modified`; nothing else of it changes (check out again, with a new "
        "Idempotency-Key, to pay them); or the first request with this "
        "Idempotency-Key is still running.",
        Conflict("Your open order is empty: add beers before checking out."),
        Conflict(
            "These beers have left the catalogue: 123457. "
            "Remove them from your order and check out again.",
            skus=["123457"],
        ),
        domain.PricesChanged([("123456", Decimal("1.19"), Decimal("1.25"))]),
        KeyInUse(),
        skus={"type": "array", "items": {"type": "string"}},
        changed={
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string"},
                    "unit_price": {"type": "string", "format": "decimal"},
                    "price": {"type": "string", "format": "decimal"},
                },
            },
        },
    ),
    422: KEY_REUSED,
    503: CATALOGUE_DOWN,
}
GET_ORDER = {
    **USER_RESPONSES,
    404: problem_doc(
        "No such order of the caller's (for an administrator: no such order at all).",
        NotFound("You have no order 7."),
        NotFound("There is no order 7."),
    ),
}
