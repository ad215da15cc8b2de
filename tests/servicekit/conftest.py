import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from launcher import free_port


@dataclass
class SeenRequest:
    method: str
    path: str
    raw_path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    client_port: int


class FakeUpstream:
    """A real HTTP/1.1 keep-alive server in a thread that answers what a test
    tells it to, and remembers what it was asked."""

    def __init__(self) -> None:
        self.status = 200
        self.body: object = {}
        self.delay = 0.0
        self.close_kept_alive = False  # drop a connection's second request unanswered
        self.hang_up = 0  # how many of the next requests to drop unanswered
        self.dropped = 0
        self.requests: list[SeenRequest] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.served = getattr(self, "served", 0) + 1
                if fake.hang_up:
                    fake.hang_up -= 1
                    fake.dropped += 1
                    self.close_connection = True  # as a server that just died
                    return
                if fake.close_kept_alive and self.served > 1:
                    self.close_connection = True  # as a server whose keep-alive just ran out
                    return
                url = urlsplit(self.path)
                fake.requests.append(
                    SeenRequest(
                        self.command,
                        url.path,
                        self.path,
                        parse_qs(url.query),
                        dict(self.headers),
                        self.client_address[1],
                    )
                )
                time.sleep(fake.delay)
                body = fake.body if isinstance(fake.body, str) else json.dumps(fake.body)
                data = body.encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def dead_url() -> str:
    """A URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"
