from tasks import create_admin, service_context
from tests.databases import fresh_database_url
from users.domain import promote_to_admin
from users.models import User


def test_create_admin_creates_an_administrator_and_prints_no_secret(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", fresh_database_url("test_admins", tmp_path))
    create_admin("boss", "boss@example.com", "big-secret-1")
    printed = capsys.readouterr().out
    assert "Created administrator boss" in printed
    assert "big-secret-1" not in printed

    with service_context("users") as db:
        user = db.session.scalars(db.select(User)).one()
    assert user.is_admin and user.username == "boss"


def test_create_admin_promotes_an_existing_user(app, client, register, login):
    register("ivan")
    with app.app_context():
        assert promote_to_admin("IVAN") is not None
    token = login("ivan")
    assert client.get("/api/users/me", headers={"Authorization": token}).json["is_admin"] is True


def test_promoting_nobody_finds_nobody(app):
    with app.app_context():
        assert promote_to_admin("nobody") is None


def test_create_admin_with_a_taken_email_says_so_without_a_traceback(monkeypatch, tmp_path):
    import pytest
    from invoke import Exit

    monkeypatch.setenv("DATABASE_URL", fresh_database_url("test_admins", tmp_path))
    create_admin("boss", "boss@example.com", "big-secret-1")
    with pytest.raises(Exit, match="Already taken: email"):
        create_admin("boss2", "BOSS@example.com", "big-secret-1")
