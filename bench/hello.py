"""The ceiling: a bare Flask endpoint, served exactly like the services."""

from flask import Flask

from servicekit.config import BaseConfig


def create_app() -> Flask:
    app = Flask(__name__)
    # What the server reads from every app it serves (servicekit.serving).
    app.config.update(
        MAX_CONTENT_LENGTH=BaseConfig.MAX_CONTENT_LENGTH,
        BODY_TIMEOUT_SECONDS=BaseConfig.BODY_TIMEOUT_SECONDS,
        WORKER_MEMORY_MIB=BaseConfig.WORKER_MEMORY_MIB,
    )

    @app.get("/")
    def hello() -> dict[str, bool]:
        return {"ok": True}

    return app
