"""A stand-in beers service, served from the test process: it answers from its
prices, or slowly, or with 500."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SLOW_SECONDS = 4.0  # how long the slow fake waits, unless released sooner


class FakeBeers:
    """A stand-in beers service: it answers from `prices`, or slowly, or with 500."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.prices: dict[str, str] = {}
        self.calls: list[tuple[str, dict[str, list[str]], str | None]] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                fake.calls.append((url.path, query, self.headers.get("X-Request-ID")))
                if fake.mode == "slow":
                    fake.release.wait(SLOW_SECONDS)
                if fake.mode == "error":
                    self.answer(500, {"title": "Internal Server Error"})
                elif url.path.rstrip("/") == "/api/beers":
                    skus = [sku for sku in query.get("sku", []) if sku in fake.prices]
                    self.answer(200, [fake.beer(sku) for sku in skus])
                elif url.path.removeprefix("/api/beers/") in fake.prices:
                    self.answer(200, fake.beer(url.path.removeprefix("/api/beers/")))
                else:
                    self.answer(404, {"title": "Not Found"})

            def answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # orders stopped waiting and hung up: that is the point

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = False  # server_close() then waits for every handler

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def beer(self, sku: str) -> dict[str, str]:
        return {"sku": sku, "name": f"Fake {sku}", "price": self.prices[sku]}

    def __enter__(self) -> FakeBeers:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
