"""What a request brings (path, query, body) is read before anything else is
looked at, the token included: what cannot be read, or a query parameter the
operation does not declare, is a 4xx problem naming it, never a 500 further in.
A JSON body is parsed here once; the operation's input schema loads that same
document. Body fields are held to the operation after the token check
(its body schema, or refuse_a_body_it_does_not_take from servicekit.output).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote_to_bytes

import orjson
from apiflask.schema_adapters.marshmallow import parser
from flask import Request, abort, current_app, request
from marshmallow import Schema, missing

from .errors import NotFound, ValidationFailed

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_JSON_DEPTH = 32
UNREADABLE = "The request body could not be read: send valid JSON or a form."
UNKNOWN_FIELD = "Unknown field."  # marshmallow's own word for it, in a body schema
JSON_AS_FORM = "The body is JSON: send it with Content-Type: application/json."
NO_BODY = "This operation takes no body."
QUERY_LOCATIONS = ("query", "querystring")
JSON_DOCUMENT = "servicekit.json_document"  # where a request keeps its parsed body


class UnreadableBody(ValidationFailed):
    def __init__(self, reason: str) -> None:
        super().__init__({"body": [reason]}, detail=UNREADABLE)


class JsonSentAsForm(ValidationFailed):
    def __init__(self) -> None:
        super().__init__({"body": [JSON_AS_FORM]}, detail=JSON_AS_FORM)


class UnknownFields(ValidationFailed):
    def __init__(self, names: Iterable[str]) -> None:
        super().__init__({name: [UNKNOWN_FIELD] for name in names})


def read_request_first() -> None:
    """A before-request hook: the path, the query and the body, readable or refused."""
    environ = request.environ
    _check_path(environ.get("PATH_INFO", ""))
    query = environ.get("QUERY_STRING", "")
    if "%" in query or not query.isascii():  # else plain ASCII: nothing to decode
        if not _is_utf8(unquote_to_bytes(query)):
            raise ValidationFailed({"query": ["Not UTF-8 once percent-decoded."]})
        if "%00" in query:
            _refuse_nul(parse_qsl(query, keep_blank_values=True))
    if _has_body(environ):
        _check_body()
    if query and request.method != "OPTIONS":  # a preflight names no inputs
        _refuse_undeclared_query_parameters()


def _check_path(path: str) -> None:
    # WSGI gives the path's bytes as latin-1 characters.
    if not path.isascii() and not _is_utf8(path.encode("latin-1", "replace")):
        raise ValidationFailed({"path": ["Not UTF-8 once percent-decoded."]})
    if "\x00" in path:
        raise NotFound("No such resource.")


def _has_body(environ: dict[str, Any]) -> bool:
    return environ.get("CONTENT_LENGTH", "") not in ("", "0")


def _check_body() -> None:
    """JSON or a form (else 415) of at most MAX_CONTENT_LENGTH (else 413): JSON
    nested at most MAX_JSON_DEPTH deep, a form in UTF-8, no NUL character (no
    database stores it alike); JSON sent as a form, or untyped (`curl -d`), is a
    400 saying to send application/json rather than a puzzling missing field."""
    is_json = request.is_json
    if not (is_json or request.mimetype in FORM_TYPES):
        if not request.mimetype and _is_json_document(request.get_data(cache=True)):
            raise JsonSentAsForm()
        abort(415)
    raw = request.get_data(cache=True)  # past MAX_CONTENT_LENGTH: 413
    if is_json:
        json_document()
        return
    urlencoded = request.mimetype == FORM_TYPES[0]
    if urlencoded and _is_json_document(raw):
        raise JsonSentAsForm()
    if not _is_utf8(unquote_to_bytes(raw) if urlencoded else raw):
        raise UnreadableBody("The form is not UTF-8.")
    if urlencoded and (b"%00" in raw or b"\x00" in raw):
        _refuse_nul(parse_qsl(raw.decode(), keep_blank_values=True))
    elif not urlencoded and b"\x00" in raw:
        _refuse_nul(request.form.items(multi=True))


def json_document() -> Any:
    """The request's JSON body, parsed and checked once a request (marshmallow's
    `missing` when it is empty)."""
    environ = request.environ  # the request's own: an app context may serve several
    if JSON_DOCUMENT not in environ:
        raw = request.get_data(cache=True)
        environ[JSON_DOCUMENT] = _checked_json(raw) if raw else missing
    return environ[JSON_DOCUMENT]


@parser.location_loader("json_or_form")
def _load_json_or_form(req: Request, schema: Schema) -> Any:
    """What an input schema of location `json_or_form` loads: the JSON document
    already parsed (webargs would parse it again), or else the form."""
    if req.is_json and (document := json_document()) is not missing:
        return document
    return parser.load_form(req, schema)


def _checked_json(raw: bytes) -> Any:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise UnreadableBody(f"Not JSON: {error.msg}.") from error
    if _depth(document) > MAX_JSON_DEPTH:
        raise UnreadableBody(f"Nested more than {MAX_JSON_DEPTH} levels deep.")
    if b"\\u0000" in raw:  # how JSON writes a NUL in a string
        fields = document.items() if isinstance(document, dict) else [("body", document)]
        _refuse_nul(fields)
    return document


def _is_json_document(raw: bytes) -> bool:
    """Whether the body is a JSON object or array (no form starts with `{` or `[`)."""
    if raw.lstrip()[:1] not in (b"{", b"["):
        return False
    try:
        return isinstance(orjson.loads(raw), dict | list)
    except orjson.JSONDecodeError:
        return False


def _refuse_undeclared_query_parameters() -> None:
    """400 naming each query parameter the operation does not declare."""
    declared = _declared_by_the_view()
    if declared is None:
        return
    unknown = [name for name in request.args if name not in declared.query]
    if unknown:
        raise UnknownFields(dict.fromkeys(unknown))


def refuse_a_body_it_does_not_take() -> None:
    """400 naming each body field sent to an operation that takes no body. The
    view calls it (servicekit.output) once the token is checked, if there is
    one, so that a caller with no valid token hears 401 before any word about
    the body, as from an operation that takes one."""
    if not _has_body(request.environ):
        return
    declared = _declared_by_the_view()
    if declared is not None and not declared.takes_body:
        names = _body_field_names()
        if names:
            raise UnknownFields(dict.fromkeys(names))


class Declared(NamedTuple):
    """What an operation takes, as its view declares it."""

    query: frozenset[str]  # the query parameters' names
    takes_body: bool


def _declared_by_the_view() -> Declared | None:
    rule = request.url_rule
    if rule is None:  # no such path or method: routing answers
        return None
    return _declared_inputs(current_app.view_functions[rule.endpoint])


@cache
def _declared_inputs(view: Callable[..., Any]) -> Declared | None:
    """What the view declares; None for a view outside the OpenAPI document.
    APIFlask keeps what `input` and `doc` were given in the
    view's private `_spec` (whence the document is made), and no public API
    says it: this is the one place that reads it, and
    tests/servicekit/test_declared_inputs.py pins what it finds there."""
    spec = getattr(view, "_spec", None)
    if spec is None or spec.get("hide"):
        return None
    query_names = frozenset(
        field.data_key or name
        for schema, location in spec.get("args", ())
        if location in QUERY_LOCATIONS
        for name, field in schema.load_fields.items()
    )
    return Declared(query_names, "body" in spec)


def _body_field_names() -> list[str]:
    """The fields of a body already read and found JSON or a form."""
    if request.is_json:
        document = json_document()
        if isinstance(document, dict):
            return list(document)
        raise ValidationFailed({"body": [NO_BODY]})
    return [*request.form, *request.files]


def _refuse_nul(fields: Iterable[tuple[str, Any]]) -> None:
    """400 naming each field whose name or value holds a NUL character."""
    with_nul = sorted({name or "body" for name, value in fields if _has_nul(name, value)})
    if with_nul:
        raise ValidationFailed({name: ["Must not contain NUL characters."] for name in with_nul})


def _has_nul(*values: Any) -> bool:
    for value in values:
        if isinstance(value, str) and "\x00" in value:
            return True
        if isinstance(value, list | tuple) and _has_nul(*value):
            return True
        if isinstance(value, dict) and _has_nul(*value.keys(), *value.values()):
            return True
    return False


def _depth(value: Any) -> int:
    """How deep arrays and objects nest in a parsed JSON document (a scalar is 0),
    counted level by level and no further than one past the limit."""
    depth, level = 0, [value]
    while True:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers or depth > MAX_JSON_DEPTH:
            return depth
        depth += 1
        level = [
            child
            for item in containers
            for child in (item.values() if isinstance(item, dict) else item)
        ]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
