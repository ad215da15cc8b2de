"""Search: GET /api/beers/?q= keeps the beers whose name contains q, in any case
and any alphabet, `%` and `_` plain; the total counts the matches."""

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

import beers
from beers.models import db
from servicekit.migrations import upgrade
from tests.databases import fresh_database_url

from .conftest import ADMIN

ODD_NAMES = {
    "P-1": "100% Малц",
    "P-2": "Pale_Ale",
    "P-3": "Pale Ale",
    "P-4": "Back\\slash",
    "P-5": "Straße",
}


@pytest.fixture
def odd_names(client: FlaskClient) -> None:
    for sku, name in ODD_NAMES.items():
        response = client.post(
            "/api/beers/", json={"sku": sku, "name": name, "price": "1.00"}, headers=ADMIN
        )
        assert response.status_code == 201


def names_found(client: FlaskClient, q: str, **query: str) -> tuple[list[str], str]:
    response = client.get("/api/beers/", query_string={"q": q, **query})
    assert response.status_code == 200, response.json
    return [beer["name"] for beer in response.json], response.headers["X-Total-Count"]


@pytest.mark.parametrize(
    "q, names",
    [
        ("бург", ["Бургаско"]),
        ("БУРГАСКО", ["Бургаско"]),
        ("зАгОр", ["Загорка"]),
        ("TUB", ["Tuborg"]),
        ("org", ["Tuborg"]),
        ("tuborga", []),
    ],
)
def test_a_search_finds_names_containing_it_in_any_case_and_alphabet(
    client: FlaskClient, q: str, names: list[str]
) -> None:
    assert names_found(client, q) == (names, str(len(names)))


@pytest.mark.parametrize(
    "q, names",
    [
        ("%", ["100% Малц"]),
        ("0% м", ["100% Малц"]),
        ("_", ["Pale_Ale"]),
        ("e_a", ["Pale_Ale"]),
        ("pale", ["Pale_Ale", "Pale Ale"]),
        ("\\", ["Back\\slash"]),
        ("k\\s", ["Back\\slash"]),
    ],
)
def test_percent_underscore_and_backslash_are_plain_characters(
    client: FlaskClient, odd_names: None, q: str, names: list[str]
) -> None:
    assert names_found(client, q) == (names, str(len(names)))


def test_a_search_folds_letters_that_fold_to_several(client: FlaskClient, odd_names: None) -> None:
    assert names_found(client, "STRASSE") == (["Straße"], "1")
    assert names_found(client, "straße") == (["Straße"], "1")


def test_the_total_counts_the_matches_on_every_page(client: FlaskClient, odd_names: None) -> None:
    # A Latin "a": the a in Малц, Бургаско and Загорка is Cyrillic.
    assert names_found(client, "a", limit="2") == (["Pale_Ale", "Pale Ale"], "4")
    assert names_found(client, "a", limit="2", offset="2") == (["Back\\slash", "Straße"], "4")
    assert names_found(client, "a", offset="10") == ([], "4")


def test_a_search_among_chosen_skus_keeps_both_conditions(
    client: FlaskClient, odd_names: None
) -> None:
    response = client.get("/api/beers/?q=ale&sku=P-3&sku=123458&sku=P-5")
    assert [beer["sku"] for beer in response.json] == ["P-3"]
    assert response.headers["X-Total-Count"] == "1"


@pytest.mark.parametrize("q", ["", "x" * 256])
def test_a_search_is_1_to_255_characters(client: FlaskClient, q: str) -> None:
    response = client.get("/api/beers/", query_string={"q": q})
    assert response.status_code == 400
    assert list(response.json["errors"]) == ["q"]


def test_a_renamed_beer_is_found_by_its_new_name_only(client: FlaskClient) -> None:
    patched = client.patch("/api/beers/123458", json={"name": "Ариана"}, headers=ADMIN)
    assert patched.status_code == 200
    assert names_found(client, "tub") == ([], "0")
    assert names_found(client, "АРИАН") == (["Ариана"], "1")
    replaced = client.put(
        "/api/beers/123458", data={"name": "Шуменско", "price": "1.10"}, headers=ADMIN
    )
    assert replaced.status_code == 200
    assert names_found(client, "ариан") == ([], "0")
    assert names_found(client, "шумен") == (["Шуменско"], "1")


def test_the_longest_name_is_kept_and_found_though_it_folds_to_twice_its_length(
    client: FlaskClient,
) -> None:
    name = "ß" * 255
    added = client.post(
        "/api/beers/", json={"sku": "LONG", "name": name, "price": "1.00"}, headers=ADMIN
    )
    assert added.status_code == 201
    assert names_found(client, "SS" * 127) == ([name], "1")


def test_the_migration_folds_the_names_already_in_the_catalogue(tmp_path: Path) -> None:
    url = fresh_database_url("test_search_migration", tmp_path)
    app = beers.create_app({"DATABASE_URL": url, "SECRET_KEY": "t"})
    with app.app_context():
        upgrade("beers", db, "0001")
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO beers (sku, name, price, time_created, time_modified) VALUES "
                    "('1', 'БУРГАСКО', 119, '2026-01-01', '2026-01-01'), "
                    "('2', 'Straße', 150, '2026-01-01', '2026-01-01')"
                )
            )
        upgrade("beers", db)
        with db.engine.connect() as connection:
            folded = connection.execute(text("SELECT name_folded FROM beers ORDER BY id")).scalars()
            assert list(folded) == ["бургаско", "strasse"]
        db.engine.dispose()
