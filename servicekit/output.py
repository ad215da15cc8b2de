"""Answers as JSON, fast: each output schema is compiled once into a plain
function, and JSON is written by orjson.

The schemas stay the one declaration of every answer's shape (they make the
OpenAPI document); what they cost at run time, marshmallow's per-field
machinery on every request, is paid once per schema instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import wraps
from typing import Any

import orjson
from apiflask import APIBlueprint
from flask import Response
from flask.json.provider import JSONProvider
from marshmallow import Schema, fields

from .intake import refuse_a_body_it_does_not_take

Dumper = Callable[[Any], Any]
# Fields whose value is already what JSON shows: no conversion at all.
AS_IS = (fields.Integer, fields.String, fields.Boolean, fields.Email, fields.URL)
# False dumps every answer with its schema's own `dump` instead (alike, slower):
# the switch for measuring what compiled dumpers buy.
COMPILED_DUMPS = True


def compile_dumper(schema: Schema) -> Dumper:
    """A function that dumps as schema.dump does, for the objects our views
    return (rows, dataclasses, dicts), without marshmallow's machinery: values
    JSON shows as they are are copied, others converted by their field's own
    public `serialize`."""
    plan: list[tuple[str, str, Dumper | None]] = []
    for name, field in schema.dump_fields.items():
        key = field.data_key or name
        attribute = field.attribute or name
        plan.append((key, attribute, _field_dumper(field)))

    def dump_one(obj: Any) -> dict[str, Any]:
        get: Callable[[str], Any] = obj.get if isinstance(obj, Mapping) else obj.__getattribute__
        body = {}
        for key, attribute, convert in plan:
            value = get(attribute)
            body[key] = value if convert is None or value is None else convert(value)
        return body

    if schema.many:
        return lambda objs: [dump_one(obj) for obj in objs]
    return dump_one


def _field_dumper(field: fields.Field[Any]) -> Dumper | None:
    if type(field) in AS_IS:
        return None
    if isinstance(field, fields.Nested):
        nested = field.schema
        return compile_dumper(nested)
    if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
        inner = compile_dumper(field.inner.schema)
        return lambda values: [inner(value) for value in values]
    name = field.name or "value"
    return lambda value: field.serialize(name, value, accessor=_the_value_itself)


def _the_value_itself(value: Any, attribute: str, default: Any) -> Any:
    """An accessor for Field.serialize that hands it the value already read."""
    return value


def json_response(
    body: Any,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    mimetype: str = "application/json",
) -> Response:
    """A JSON answer, ending in a newline like Flask's own."""
    return Response(
        orjson.dumps(body, default=_json_default, option=orjson.OPT_APPEND_NEWLINE),
        status=status,
        headers=headers,
        mimetype=mimetype,
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class OrjsonProvider(JSONProvider):
    """Flask's JSON (jsonify, problem bodies) by orjson: UTF-8 as is, keys in order."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=_json_default).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        return json_response(self._prepare_response_obj(args, kwargs))


def _refusing_a_body_it_does_not_take(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def checked(*args: Any, **view_kwargs: Any) -> Any:
        refuse_a_body_it_does_not_take()
        return view(*args, **view_kwargs)

    return checked


class ServiceBlueprint(APIBlueprint):
    """An APIBlueprint whose `output` documents the schema as APIFlask does and
    serializes with the schema compiled once (see compile_dumper). Under the
    token check, above the view: a body sent to an operation that takes none
    is refused there, public operations' too (servicekit.intake); orders'
    idempotency keys ask the same before a key is claimed (orders.idempotency).

    A view returns an object, or (object, status) or (object, status, headers),
    or a Response of its own, which goes out as it is.
    """

    def output(  # type: ignore[override]
        self, schema: Any, status_code: int = 200, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        document = super().output(schema, status_code=status_code, **kwargs)
        if not isinstance(schema, Schema | type) or schema == {}:
            return lambda view: document(_refusing_a_body_it_does_not_take(view))
        instance = schema() if isinstance(schema, type) else schema
        dump = compile_dumper(instance)

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            @wraps(view)
            def answer(*args: Any, **view_kwargs: Any) -> Response:
                refuse_a_body_it_does_not_take()
                returned = view(*args, **view_kwargs)
                if isinstance(returned, Response):
                    return returned
                status, headers = status_code, None
                if type(returned) is tuple:  # not a row, which is a tuple too
                    returned, status, *rest = returned
                    headers = rest[0] if rest else None
                body = dump(returned) if COMPILED_DUMPS else instance.dump(returned)
                return json_response(body, status, headers)

            return document(answer)

        return decorator
