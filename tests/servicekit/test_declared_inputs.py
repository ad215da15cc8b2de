"""servicekit.intake learns what an operation takes from what APIFlask keeps on
the view (its `_spec`: no public API says it). These tests pin that behaviour
of the APIFlask in requirements.txt: an upgrade that moves it fails here, by
name, rather than letting undeclared query parameters through."""

from typing import Any

from apiflask import APIBlueprint, HTTPTokenAuth, Schema
from apiflask.fields import Integer, String

from servicekit.intake import Declared, _declared_inputs

bp = APIBlueprint("pinned", __name__)
auth = HTTPTokenAuth()


class Page(Schema):
    page = Integer()
    per_page = Integer(data_key="per-page")


class Body(Schema):
    name = String()


@bp.get("/things")
@bp.input(Page, location="query")
def list_things(query_data: dict[str, Any]) -> str:
    return "things"


@bp.post("/things")
@bp.auth_required(auth)
@bp.input(Body)
def add_thing(json_data: dict[str, Any]) -> str:
    return "added"


@bp.delete("/things")
@bp.doc(security="ApiKeyAuth")
def clear_things() -> str:
    return "cleared"


@bp.get("/hidden")
@bp.doc(hide=True)
def hidden() -> str:
    return "hidden"


def plain_flask_view() -> str:
    return "plain"


def test_query_parameters_are_their_names_as_sent() -> None:
    assert _declared_inputs(list_things) == Declared(
        frozenset({"page", "per-page"}), takes_body=False
    )


def test_a_body_is_seen_under_auth_required() -> None:
    assert _declared_inputs(add_thing) == Declared(frozenset(), takes_body=True)


def test_an_operation_with_no_input_takes_no_body() -> None:
    assert _declared_inputs(clear_things) == Declared(frozenset(), takes_body=False)


def test_views_outside_the_document_declare_nothing() -> None:
    assert _declared_inputs(hidden) is None
    assert _declared_inputs(plain_flask_view) is None
