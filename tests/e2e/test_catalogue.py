"""The catalogue over real HTTP: pages, SKU lookups, headers, slashes and UTF-8."""

from __future__ import annotations

import pytest
import requests

from tests.problems import assert_problem

from .api_client import TIMEOUT, ShopApi, assert_utc_time, bearer, unique

pytestmark = pytest.mark.e2e


@pytest.fixture
def three_beers(api: ShopApi, admin_token: str) -> list[str]:
    """Three new beers' SKUs, in the order they were added (their id order)."""
    return [api.new_beer(admin_token, price=price) for price in ("1.10", "2.20", "3.30")]


def skus_of(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [beer["sku"] for beer in response.json()]


def test_adding_a_beer_answers_201_with_it_and_where_it_lives(
    api: ShopApi, admin_token: str
) -> None:
    sku = unique("sku")

    response = api.create_beer(
        admin_token, sku, name="Tuborg", price="1.50", image="https://example.com/tuborg.png"
    )

    assert response.status_code == 201, response.text
    assert response.headers["Location"].endswith(f"/api/beers/{sku}")
    beer = response.json()
    assert beer.keys() == {"id", "sku", "name", "price", "image", "time_created", "time_modified"}
    assert (beer["sku"], beer["name"], beer["price"]) == (sku, "Tuborg", "1.50")
    assert beer["image"] == "https://example.com/tuborg.png"
    assert_utc_time(beer["time_created"])
    assert api.beer(sku).json() == beer


def test_adding_a_beer_with_an_empty_image_means_none(api: ShopApi, admin_token: str) -> None:
    response = api.create_beer(admin_token, image="")

    assert response.status_code == 201, response.text
    assert response.json()["image"] is None


def test_adding_a_beer_accepts_a_form(api: ShopApi, admin_token: str) -> None:
    sku = unique("formbeer")

    response = requests.post(
        f"{api.beers_url}/api/beers/",
        data={"sku": sku, "name": "Form ale", "price": "3.10"},
        headers=bearer(admin_token),
        timeout=TIMEOUT,
    )

    assert response.status_code == 201, response.text
    assert api.beer(sku).json()["price"] == "3.10"


def test_replacing_a_beer_changes_its_name_and_price_but_not_its_sku(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token, price="1.50", name="Before")

    response = api.replace_beer(admin_token, sku, name="After", price="1.75")

    assert response.status_code == 200, response.text
    assert (response.json()["sku"], response.json()["name"]) == (sku, "After")
    assert api.beer(sku).json()["price"] == "1.75"


def test_replacing_a_beer_without_an_image_leaves_it_with_none(
    api: ShopApi, admin_token: str
) -> None:
    sku = unique("pictured")
    api.create_beer(admin_token, sku, image="https://example.com/beer.png")

    response = api.replace_beer(admin_token, sku, name="Plain", price="1.50")

    assert response.status_code == 200, response.text
    assert api.beer(sku).json()["image"] is None


def test_deleting_a_beer_takes_it_out_of_the_catalogue(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token)

    response = api.delete_beer(admin_token, sku)

    assert response.status_code == 204
    assert_problem(api.beer(sku), 404)
    assert skus_of(api.list_beers({"sku": sku})) == []


def test_repeated_skus_fetch_those_beers_in_id_order(api: ShopApi, three_beers: list[str]) -> None:
    response = api.list_beers({"sku": [three_beers[2], three_beers[0], unique("absent")]})

    assert skus_of(response) == [three_beers[0], three_beers[2]]
    assert response.headers["X-Total-Count"] == "2"


@pytest.mark.parametrize(
    ("limit", "offset", "expected"),
    [(2, 0, [0, 1]), (2, 1, [1, 2]), (1, 2, [2]), (5, 3, [])],
)
def test_limit_and_offset_page_through_the_beers_with_the_total_in_a_header(
    api: ShopApi, three_beers: list[str], limit: int, offset: int, expected: list[int]
) -> None:
    response = api.list_beers({"sku": three_beers, "limit": limit, "offset": offset})

    assert skus_of(response) == [three_beers[index] for index in expected]
    assert response.headers["X-Total-Count"] == "3"


def test_the_whole_catalogue_is_listed_in_id_order_with_its_count(
    api: ShopApi, three_beers: list[str]
) -> None:
    response = api.list_beers({"limit": 1000})

    beers = response.json()
    ids = [beer["id"] for beer in beers]
    assert ids == sorted(ids)
    assert int(response.headers["X-Total-Count"]) == len(beers)
    assert [sku for sku in skus_of(response) if sku in three_beers] == three_beers


def test_the_first_page_holds_a_hundred_beers_by_default(api: ShopApi, admin_token: str) -> None:
    total = int(api.list_beers({"limit": 1}).headers["X-Total-Count"])
    for _ in range(max(0, 101 - total)):
        api.new_beer(admin_token)

    response = api.list_beers()

    assert len(response.json()) == 100
    assert int(response.headers["X-Total-Count"]) >= 101


@pytest.mark.parametrize(
    ("field", "query"),
    [
        ("limit", {"limit": "0"}),
        ("limit", {"limit": "1001"}),
        ("limit", {"limit": "many"}),
        ("offset", {"offset": "-1"}),
        ("offset", {"offset": "first"}),
    ],
)
def test_a_bad_page_query_is_400_naming_the_field(
    api: ShopApi, field: str, query: dict[str, str]
) -> None:
    response = api.list_beers(query)

    problem = assert_problem(response, 400)
    assert field in problem["errors"]


def test_an_offset_past_any_catalogue_is_an_empty_page_or_a_400_never_a_500(api: ShopApi) -> None:
    response = api.list_beers({"offset": "99999999999999999999"})

    if response.status_code == 400:
        assert "offset" in assert_problem(response, 400)["errors"]
    else:
        assert response.status_code == 200, response.text
        assert response.json() == []


@pytest.mark.parametrize("path", ["/api/beers", "/api/beers/"])
def test_listing_answers_with_or_without_a_trailing_slash_and_no_redirect(
    api: ShopApi, three_beers: list[str], path: str
) -> None:
    response = requests.get(
        api.beers_url + path,
        params={"sku": three_beers},
        allow_redirects=False,
        timeout=TIMEOUT,
    )

    assert response.status_code == 200
    assert skus_of(response) == three_beers


@pytest.mark.parametrize("path", ["/api/beers", "/api/beers/"])
def test_adding_answers_with_or_without_a_trailing_slash_and_no_redirect(
    api: ShopApi, admin_token: str, path: str
) -> None:
    sku = unique("slash")

    response = requests.post(
        api.beers_url + path,
        json={"sku": sku, "name": "Slash", "price": "1.00"},
        headers=bearer(admin_token),
        allow_redirects=False,
        timeout=TIMEOUT,
    )

    assert response.status_code == 201, response.text
    assert api.beer(sku).status_code == 200


def test_non_ascii_names_are_sent_as_utf8_not_escaped(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token, name="Загорка")

    for response in (api.beer(sku), api.list_beers({"sku": sku})):
        assert response.status_code == 200
        assert "Загорка".encode() in response.content
        assert b"\\u" not in response.content


# Search


@pytest.fixture
def searchable(api: ShopApi, admin_token: str) -> dict[str, str]:
    """Beers whose names share a word no other test's beers hold, by SKU in id order."""
    word = unique("Слово").replace("-", "")  # "Слово" and 12 hex digits
    names = [f"{word} Светло", f"{word} 100% Pale_Ale", f"Тъмно {word} Pale Ale"]
    added = {}
    for name in names:
        added[api.new_beer(admin_token, name=name)] = name
    return added


def names_found(api: ShopApi, q: str, **params: int) -> tuple[list[str], str]:
    response = api.list_beers({"q": q, **params})
    assert response.status_code == 200, response.text
    return [beer["name"] for beer in response.json()], response.headers["X-Total-Count"]


def test_search_finds_names_containing_it_in_any_case_in_cyrillic_and_latin(
    api: ShopApi, searchable: dict[str, str]
) -> None:
    names = list(searchable.values())
    word = names[0].split()[0]
    assert names_found(api, word.upper()) == (names, "3")
    assert names_found(api, f"{word.lower()} свет") == ([names[0]], "1")
    assert names_found(api, f"{word} 100% PALE_") == ([names[1]], "1")
    assert names_found(api, f"тЪМНО {word.lower()}") == ([names[2]], "1")


def test_percent_and_underscore_in_a_search_are_plain_characters(
    api: ShopApi, searchable: dict[str, str]
) -> None:
    names = list(searchable.values())
    word = names[0].split()[0]
    assert names_found(api, f"{word} 100%") == ([names[1]], "1")
    assert names_found(api, f"{word} 1_0") == ([], "0")
    assert names_found(api, f"{word} pale ale") == ([names[2]], "1")
    assert names_found(api, f"{word} pale_ale") == ([], "0")  # as a wildcard, "_" finds it
    assert names[1] in names_found(api, "100% pale_ale", limit=1000)[0]
    assert names_found(api, f"{word} %") == ([], "0")


def test_a_search_pages_with_the_total_counting_the_matches(
    api: ShopApi, searchable: dict[str, str]
) -> None:
    names = list(searchable.values())
    word = names[0].split()[0]
    assert names_found(api, word, limit=2) == (names[:2], "3")
    assert names_found(api, word, limit=2, offset=2) == (names[2:], "3")
    assert names_found(api, word, offset=3) == ([], "3")


@pytest.mark.parametrize("q", ["", "я" * 256])
def test_a_search_of_no_or_too_many_characters_is_400_naming_q(api: ShopApi, q: str) -> None:
    problem = assert_problem(api.list_beers({"q": q}), 400)
    assert list(problem["errors"]) == ["q"]
