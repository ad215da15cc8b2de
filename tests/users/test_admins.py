from pathlib import Path

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from launcher import service_context, setup_service
from tests.databases import fresh_database_url
from tests.users.conftest import Login, Register
from users.admin import AdminRefused, create_admin
from users.domain import promote_to_admin
from users.models import User


def make_admin(username: str, email: str, password: str = "big-secret-1") -> str:
    """As `inv users create-admin` does: the schema first, then the administrator."""
    setup_service("users")
    with service_context("users"):
        return create_admin(username, email, lambda: password)


def test_create_admin_creates_an_administrator_and_says_so_without_a_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url("test_admins", tmp_path))
    said = make_admin("boss", "boss@example.com")
    assert "Created administrator boss" in said
    assert "big-secret-1" not in said

    with service_context("users") as db:
        user = db.session.scalars(db.select(User)).one()
    assert user.is_admin and user.username == "boss"


def test_create_admin_promotes_an_existing_user(
    app: APIFlask, client: FlaskClient, register: Register, login: Login
) -> None:
    register("ivan")
    with app.app_context():
        assert promote_to_admin("IVAN") is not None
    token = login("ivan")
    assert client.get("/api/users/me", headers={"Authorization": token}).json["is_admin"] is True


def test_promoting_nobody_finds_nobody(app: APIFlask) -> None:
    with app.app_context():
        assert promote_to_admin("nobody") is None


def test_create_admin_with_a_taken_email_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pytest

    monkeypatch.setenv("DATABASE_URL", fresh_database_url("test_admins", tmp_path))
    make_admin("boss", "boss@example.com")
    with pytest.raises(AdminRefused, match="Already taken: email"):
        make_admin("boss2", "BOSS@example.com")
