"""The ceiling: a bare Flask endpoint, served exactly like the services."""

from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def hello() -> dict[str, bool]:
        return {"ok": True}

    return app
