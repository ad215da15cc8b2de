from collections.abc import Iterator
from pathlib import Path

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from beers import create_app
from beers.domain import seed_demo_catalogue
from beers.models import db
from tests.databases import fresh_app
from tests.fakes import FakeUsersClient

ADMIN = {"Authorization": "Bearer admin-token"}
ALICE = {"Authorization": "Bearer alice-token"}


@pytest.fixture
def users() -> FakeUsersClient:
    return FakeUsersClient()


@pytest.fixture
def app(tmp_path: Path, users: FakeUsersClient) -> Iterator[APIFlask]:
    with fresh_app(create_app, db, "beers", tmp_path, users_client=users) as app:
        with app.app_context():
            seed_demo_catalogue()
        yield app


@pytest.fixture
def client(app: APIFlask) -> FlaskClient:
    return app.test_client()
