"""What the beers operations answer besides their output, for the OpenAPI
document: each operation's error responses with their examples, and the
headers and path examples it shows. The views take them by name."""

from __future__ import annotations

from marshmallow import fields

from servicekit.apidocs import invalid_input_doc, path_examples, problem_doc
from servicekit.auth import ONLY_ADMINS, USER_RESPONSES
from servicekit.errors import Conflict, Forbidden, NotFound

# What an operation only administrators may call answers for want of a token or the role.
ADMIN_RESPONSES = {
    **USER_RESPONSES,
    403: problem_doc("The caller is not an administrator.", Forbidden(ONLY_ADMINS)),
}
NO_SUCH_BEER = problem_doc("No beer has this SKU.", NotFound("No beer has SKU 999999."))
SKU_IN_PATH = path_examples(sku="123456")
BAD_PRICE = invalid_input_doc("price", "At most two decimal places.")
TOTAL_COUNT = {"X-Total-Count": fields.Integer(metadata={"description": "Matches on all pages."})}
LOCATION = {"Location": fields.String(metadata={"description": "/api/beers/<sku>"})}

LIST_BEERS = {
    400: invalid_input_doc(
        "limit", "Must be greater than or equal to 1 and less than or equal to 1000."
    )
}
GET_BEER = {404: NO_SUCH_BEER}
ADD_BEER = {
    **ADMIN_RESPONSES,
    400: BAD_PRICE,
    409: problem_doc(
        "The SKU is taken.",
        Conflict("SKU 123456 is already in the catalogue.", errors={"sku": ["Already taken."]}),
    ),
}
CHANGE_BEER = {**ADMIN_RESPONSES, 400: BAD_PRICE, 404: NO_SUCH_BEER}
DELETE_BEER = {**ADMIN_RESPONSES, 404: NO_SUCH_BEER}
