import pytest

from beers import create_app
from beers.domain import seed_demo_catalogue
from beers.models import db
from tests.fakes import FakeUsersClient

ADMIN = {"Authorization": "Bearer admin-token"}
ALICE = {"Authorization": "Bearer alice-token"}


@pytest.fixture
def users():
    return FakeUsersClient()


@pytest.fixture
def app(tmp_path, users):
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path}/beers.db", "SECRET_KEY": "test"},
        users_client=users,
    )
    with app.app_context():
        db.create_all()
        seed_demo_catalogue()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()
