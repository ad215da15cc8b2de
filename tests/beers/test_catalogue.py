from typing import Any

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from beers.models import Beer, db
from tests.fakes import FakeUsersClient

from .conftest import ADMIN, ALICE


def test_the_demo_catalogue_lists_in_id_order_with_decimal_prices(client: FlaskClient) -> None:
    response = client.get("/api/beers/")
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "3"
    assert [(b["sku"], b["name"], b["price"]) for b in response.json] == [
        ("123456", "Бургаско", "1.19"),
        ("123457", "Загорка", "2.00"),
        ("123458", "Tuborg", "1.50"),
    ]


def test_non_ascii_names_are_sent_as_they_are(client: FlaskClient) -> None:
    assert "Загорка".encode() in client.get("/api/beers/").data


@pytest.mark.parametrize("path", ["/api/beers", "/api/beers/"])
def test_the_list_answers_with_and_without_the_trailing_slash(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert len(response.json or []) == 3


def test_limit_and_offset_page_through_and_the_total_counts_all(client: FlaskClient) -> None:
    response = client.get("/api/beers/?limit=1&offset=1")
    assert [b["sku"] for b in response.json] == ["123457"]
    assert response.headers["X-Total-Count"] == "3"


def test_repeated_sku_fetches_several_beers_at_once(client: FlaskClient) -> None:
    response = client.get("/api/beers/?sku=123458&sku=123456&sku=nope")
    assert [b["sku"] for b in response.json] == ["123456", "123458"]
    assert response.headers["X-Total-Count"] == "2"


@pytest.mark.parametrize(
    "query, field",
    [("limit=0", "limit"), ("limit=1001", "limit"), ("limit=x", "limit"), ("offset=-1", "offset")],
)
def test_a_bad_page_query_is_a_400_naming_it(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"/api/beers/?{query}")
    assert response.status_code == 400
    assert field in response.json["errors"]


def test_one_beer_by_sku(client: FlaskClient) -> None:
    response = client.get("/api/beers/123457")
    assert response.status_code == 200
    assert response.json["name"] == "Загорка"
    assert response.json["time_created"].endswith("+00:00")


def test_an_unknown_sku_is_a_404_problem(client: FlaskClient) -> None:
    response = client.get("/api/beers/nope")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


NEW_BEER = {
    "sku": "KAM-1",
    "name": "Каменица",
    "price": "1.80",
    "image": "https://example.com/k.png",
}


@pytest.mark.parametrize("path", ["/api/beers/", "/api/beers"])
def test_an_admin_adds_a_beer_and_learns_where_it_lives(client: FlaskClient, path: str) -> None:
    response = client.post(path, json=NEW_BEER, headers=ADMIN)
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/beers/KAM-1"
    assert response.json["price"] == "1.80"
    assert client.get("/api/beers/KAM-1").json["name"] == "Каменица"


def test_a_beer_can_be_added_with_a_form(client: FlaskClient) -> None:
    form = {"sku": "KAM-2", "name": "Каменица", "price": "2", "image": ""}
    response = client.post("/api/beers/", data=form, headers=ADMIN)
    assert response.status_code == 201
    assert response.json["price"] == "2.00"
    assert response.json["image"] is None


def test_a_price_may_be_a_json_number_when_it_is_exact(client: FlaskClient) -> None:
    response = client.post("/api/beers/", json={**NEW_BEER, "price": 1.8}, headers=ADMIN)
    assert response.status_code == 201
    assert response.json["price"] == "1.80"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"price": "1.999"}, "price"),
        ({"price": 1.999}, "price"),
        ({"price": "0"}, "price"),
        ({"price": "-1"}, "price"),
        ({"price": "1000000.00"}, "price"),
        ({"price": "NaN"}, "price"),
        ({"price": "1e3"}, "price"),
        ({"price": True}, "price"),
        ({"sku": "has space"}, "sku"),
        ({"sku": ""}, "sku"),
        ({"sku": "x" * 65}, "sku"),
        ({"sku": ".."}, "sku"),
        ({"name": ""}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"image": "ftp://example.com/a.png"}, "image"),
        ({"image": "not a url"}, "image"),
        ({"image": "https://example.com/" + "x" * 250}, "image"),
    ],
)
def test_bad_beers_are_refused_naming_the_field_and_nothing_is_written(
    app: APIFlask, client: FlaskClient, change: dict[str, Any], field: str
) -> None:
    response = client.post("/api/beers/", json={**NEW_BEER, **change}, headers=ADMIN)
    assert response.status_code == 400
    assert list(response.json["errors"]) == [field]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Beer.id))) == 3


def test_every_missing_field_is_named_at_once(client: FlaskClient) -> None:
    response = client.post("/api/beers/", json={}, headers=ADMIN)
    assert set(response.json["errors"]) == {"sku", "name", "price"}


def test_a_taken_sku_is_a_conflict(client: FlaskClient) -> None:
    response = client.post("/api/beers/", json={**NEW_BEER, "sku": "123456"}, headers=ADMIN)
    assert response.status_code == 409
    assert response.json["errors"] == {"sku": ["Already taken."]}


def test_put_replaces_the_beer_and_omitted_image_means_none(client: FlaskClient) -> None:
    client.post("/api/beers/", json=NEW_BEER, headers=ADMIN)
    response = client.put(
        "/api/beers/KAM-1", data={"name": "Каменица тъмна", "price": "2.10"}, headers=ADMIN
    )
    assert response.status_code == 200
    assert response.json["name"] == "Каменица тъмна"
    assert response.json["price"] == "2.10"
    assert response.json["image"] is None
    assert client.get("/api/beers/KAM-1").json["price"] == "2.10"


def test_put_needs_the_whole_beer(client: FlaskClient) -> None:
    response = client.put("/api/beers/123456", json={"name": "x"}, headers=ADMIN)
    assert response.status_code == 400
    assert list(response.json["errors"]) == ["price"]


def test_put_cannot_change_the_sku(client: FlaskClient) -> None:
    response = client.put(
        "/api/beers/123456", json={"sku": "999", "name": "x", "price": "1.00"}, headers=ADMIN
    )
    assert response.status_code == 400
    assert list(response.json["errors"]) == ["sku"]


def test_put_on_an_unknown_sku_is_a_404(client: FlaskClient) -> None:
    response = client.put("/api/beers/nope", json={"name": "x", "price": "1.00"}, headers=ADMIN)
    assert response.status_code == 404


def test_delete_removes_the_beer(client: FlaskClient) -> None:
    response = client.delete("/api/beers/123456", headers=ADMIN)
    assert response.status_code == 204
    assert client.get("/api/beers/123456").status_code == 404
    assert client.delete("/api/beers/123456", headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/api/beers/", NEW_BEER),
        ("put", "/api/beers/123456", {"name": "x", "price": "1.00"}),
        ("delete", "/api/beers/123456", None),
    ],
)
def test_catalogue_changes_need_a_token(
    client: FlaskClient, method: str, path: str, body: dict[str, Any]
) -> None:
    response = getattr(client, method)(path, json=body)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/api/beers/", NEW_BEER),
        ("put", "/api/beers/123456", {"name": "x", "price": "1.00"}),
        ("delete", "/api/beers/123456", None),
    ],
)
def test_catalogue_changes_need_an_administrator(
    client: FlaskClient, method: str, path: str, body: dict[str, Any]
) -> None:
    response = getattr(client, method)(path, json=body, headers=ALICE)
    assert response.status_code == 403
    assert client.get("/api/beers/123456").json["name"] == "Бургаско"


def test_a_bad_token_is_checked_before_the_body(client: FlaskClient) -> None:
    response = client.post("/api/beers/", json={}, headers={"Authorization": "Bearer junk"})
    assert response.status_code == 401


def test_beers_asks_users_about_the_token_it_was_given(
    client: FlaskClient, users: FakeUsersClient
) -> None:
    client.delete("/api/beers/123456", headers={"Authorization": "admin-token"})
    assert users.asked == ["admin-token"]


def test_when_users_is_down_a_change_is_a_503_and_nothing_is_written(
    app: APIFlask, client: FlaskClient, users: FakeUsersClient
) -> None:
    users.down = True
    response = client.post("/api/beers/", json=NEW_BEER, headers=ADMIN)
    assert response.status_code == 503
    assert response.json["service"] == "users"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Beer.id))) == 3


def test_seeding_twice_adds_the_demo_beers_once(app: APIFlask) -> None:
    from beers.domain import seed_demo_catalogue

    with app.app_context():
        assert seed_demo_catalogue() == 0
        assert db.session.scalar(db.select(db.func.count(Beer.id))) == 3


def test_a_sku_with_a_trailing_newline_is_refused(app: APIFlask, client: FlaskClient) -> None:
    response = client.post("/api/beers/", json={**NEW_BEER, "sku": "NL\n"}, headers=ADMIN)
    assert response.status_code == 400
    assert list(response.json["errors"]) == ["sku"]


def test_a_numeric_sku_in_json_is_taken_as_its_digits(client: FlaskClient) -> None:
    response = client.post("/api/beers/", json={**NEW_BEER, "sku": 654321}, headers=ADMIN)
    assert response.status_code == 201
    assert response.json["sku"] == "654321"


def test_an_offset_beyond_any_database_integer_is_a_400(client: FlaskClient) -> None:
    response = client.get("/api/beers/?offset=99999999999999999999")
    assert response.status_code == 400
    assert list(response.json["errors"]) == ["offset"]


def test_put_names_a_wrong_sku_together_with_the_other_bad_fields(client: FlaskClient) -> None:
    response = client.put(
        "/api/beers/123456", json={"sku": "A4", "name": "", "price": "x"}, headers=ADMIN
    )
    assert response.status_code == 400
    assert set(response.json["errors"]) == {"sku", "name", "price"}


@pytest.mark.parametrize("method", ["delete", "patch", "put"])
def test_the_collection_without_a_slash_answers_every_method_as_with_one(
    client: FlaskClient, method: str
) -> None:
    without = getattr(client, method)("/api/beers", headers=ADMIN)
    with_slash = getattr(client, method)("/api/beers/", headers=ADMIN)
    assert without.status_code == with_slash.status_code == 405
    assert without.headers["Allow"] == with_slash.headers["Allow"]


def test_options_on_the_collection_lists_the_methods_with_or_without_a_slash(
    client: FlaskClient,
) -> None:
    assert (
        client.options("/api/beers").headers["Allow"]
        == client.options("/api/beers/").headers["Allow"]
    )
    assert "POST" in client.options("/api/beers").headers["Allow"]


def test_a_204_has_no_content_type(client: FlaskClient) -> None:
    response = client.delete("/api/beers/123456", headers=ADMIN)
    assert response.status_code == 204
    assert "Content-Type" not in response.headers


def test_a_body_that_is_neither_json_nor_a_form_is_a_415(client: FlaskClient) -> None:
    response = client.post(
        "/api/beers/", data='{"sku": "1"}', content_type="text/plain", headers=ADMIN
    )
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"


# PATCH: only the fields sent change


def test_patching_a_price_changes_only_the_price(client: FlaskClient) -> None:
    before = client.get("/api/beers/123456").json

    response = client.patch("/api/beers/123456", json={"price": "1.29"}, headers=ADMIN)

    assert response.status_code == 200
    assert response.json["price"] == "1.29"
    assert response.json["name"] == before["name"] == "Бургаско"
    assert client.get("/api/beers/123456").json["price"] == "1.29"


def test_patching_with_a_form_and_removing_the_image(client: FlaskClient) -> None:
    client.patch("/api/beers/123456", json={"image": "https://example.com/b.png"}, headers=ADMIN)

    response = client.patch("/api/beers/123456", data={"image": ""}, headers=ADMIN)

    assert response.status_code == 200
    assert response.json["image"] is None


def test_patching_nothing_is_400(client: FlaskClient) -> None:
    response = client.patch("/api/beers/123456", json={}, headers=ADMIN)

    assert response.status_code == 400
    assert "body" in response.json["errors"]


@pytest.mark.parametrize(
    ("fields", "bad"),
    [({"price": "1.999"}, "price"), ({"name": ""}, "name"), ({"sku": "999999"}, "sku")],
)
def test_a_bad_patch_is_400_naming_the_field_and_changes_nothing(
    client: FlaskClient, fields: dict[str, Any], bad: str
) -> None:
    response = client.patch("/api/beers/123456", json=fields, headers=ADMIN)

    assert response.status_code == 400
    assert bad in response.json["errors"]
    assert client.get("/api/beers/123456").json["price"] == "1.19"


def test_patching_needs_an_administrator_and_a_beer(client: FlaskClient) -> None:
    assert client.patch("/api/beers/123456", json={"price": "2"}, headers=ALICE).status_code == 403
    assert client.patch("/api/beers/nope", json={"price": "2"}, headers=ADMIN).status_code == 404
