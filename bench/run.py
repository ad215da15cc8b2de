"""Load benchmark: the three services under wrk, against a bare Flask ceiling.

The services (and the bare Flask app) run with production settings on
temporary SQLite databases, pinned to the first core; wrk runs on the second.
Every scenario is reported as its share of the bare Flask ceiling measured in
the same run at the same number of connections.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPTS = Path(__file__).resolve().parent / "wrk"
PASSWORD = "bench-password"
LOGIN_FORM = f"username=bench0&password={PASSWORD}"
MILLISECONDS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Scenario:
    name: str
    service: str
    path: str
    goal: float | None = None  # share of the ceiling to reach
    method: str = "GET"
    body: str | None = None
    with_tokens: bool = False
    script: str = "request.lua"


SCENARIOS = (
    Scenario("hello (ceiling)", "hello", "/"),
    Scenario("beer_get", "beers", "/api/beers/123456", goal=0.60),
    Scenario("beers_list", "beers", "/api/beers/", goal=0.50),
    Scenario("token_check", "users", "/api/users/check_token", 0.60, "POST", with_tokens=True),
    Scenario("order_get", "orders", "/api/orders/current", 0.30, with_tokens=True),
    Scenario(
        "order_add",
        "orders",
        "/api/orders/current",
        0.20,
        "PUT",
        "sku=123456&quantity=1",
        with_tokens=True,
    ),
    Scenario("checkout", "orders", "/", with_tokens=True, script="checkout.lua"),
    # Last: each login hashes a password for a tenth of a second or so.
    Scenario("login", "users", "/api/users/login", None, "POST", LOGIN_FORM),
)


@dataclass
class Result:
    scenario: Scenario
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    share: float | None = None

    @property
    def met(self) -> str:
        if self.scenario.goal is None or self.share is None:
            return ""
        return "yes" if self.share >= self.scenario.goal and not self.errors else "NO"


@dataclass
class Settings:
    duration: int = 10
    connections: tuple[int, ...] = (4, 64)
    workers: int = 2
    threads: int = 4
    warmup: int = 2
    users: int = 256
    extra: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(argv: list[str], core: int) -> list[str]:
    """Pin to one core where the machine has two or more, as the goals assume."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core), *argv]
    return argv


@contextmanager
def running_shop(settings: Settings, folder: Path) -> Iterator[dict[str, str]]:
    """Users, beers, orders and the bare Flask app, served; yields their URLs."""
    from tasks import gunicorn_argv, server_env, setup_service, wait_until_ready

    ports = {name: free_port() for name in ("users", "beers", "orders", "hello")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    databases = {svc: f"sqlite:///{folder / svc}.db" for svc in ("users", "beers", "orders")}
    for service, url in databases.items():
        setup_service(service, database_url=url, seed="yes")
    servers = []
    try:
        for name, port in ports.items():
            app = "bench.hello" if name == "hello" else name
            argv = gunicorn_argv(app, "127.0.0.1", port, settings.workers, settings.threads)
            env = server_env(name, databases.get(name))
            env.update(USERS_URL=urls["users"], BEERS_URL=urls["beers"])
            env.update(settings.extra)
            log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - closed with the server
            servers.append((subprocess.Popen(pinned(argv, 0), env=env, stderr=log), log))
        for name, url in urls.items():
            wait_until_ready(url + ("/" if name == "hello" else "/ready"))
        yield urls
    finally:
        for server, _ in servers:
            server.terminate()
        for server, log in servers:
            server.wait(timeout=20)
            log.close()


def make_users(folder: Path, count: int) -> list[str]:
    """Bench users and a live token each, written straight into users' database
    (registering them over HTTP would cost two slow password hashes apiece)."""
    import secrets
    from datetime import timedelta

    from werkzeug.security import generate_password_hash

    from servicekit.db import write_transaction
    from tasks import service_context
    from users.domain import name_key, token_digest
    from users.models import Token, User

    password_hash = generate_password_hash(PASSWORD)
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    with (
        service_context("users", f"sqlite:///{folder / 'users'}.db") as db,
        write_transaction(db.session),
    ):
        for number, token in enumerate(tokens):
            name = f"bench{number}"
            user = User(
                username=name,
                email=f"{name}@example.com",
                username_key=name_key(name),
                email_key=name_key(f"{name}@example.com"),
                password_hash=password_hash,
            )
            db.session.add(user)
            db.session.flush()
            expires = datetime.now(UTC) + timedelta(days=1)
            db.session.add(Token(digest=token_digest(token), user_id=user.id, expires_at=expires))
    return tokens


def run_wrk(
    scenario: Scenario, url: str, connections: int, seconds: int, tokens: list[str]
) -> Result:
    env = dict(os.environ, METHOD=scenario.method, TOKENS=",".join(tokens))
    if scenario.body:
        env["BODY"] = scenario.body
    argv = [
        "wrk",
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "--script",
        str(WRK_SCRIPTS / scenario.script),
        url + scenario.path,
    ]
    output = subprocess.run(
        pinned(argv, 1), env=env, capture_output=True, text=True, check=True
    ).stdout
    return parse_wrk(scenario, connections, output)


def parse_wrk(scenario: Scenario, connections: int, output: str) -> Result:
    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\b", output, re.MULTILINE)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value * MILLISECONDS[unit]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    max_match = re.search(r"^\s*Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", output, re.MULTILINE)
    max_ms = float("nan")
    if max_match:
        max_ms = float(max_match.group(1)) * MILLISECONDS[max_match.group(2)]
    return Result(
        scenario,
        connections,
        float(rate.group(1)) if rate else 0.0,
        latency("50%"),
        latency("99%"),
        max_ms,
        errors,
    )


def run(settings: Settings) -> list[Result]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="beers-bench-") as tmp:
        folder = Path(tmp)
        with running_shop(settings, folder) as urls:
            tokens = make_users(folder, settings.users)
            for connections in settings.connections:
                ceiling = None
                for scenario in SCENARIOS:
                    url = urls[scenario.service]
                    used = tokens if scenario.with_tokens else []
                    if settings.warmup:
                        run_wrk(scenario, url, connections, settings.warmup, used)
                    result = run_wrk(scenario, url, connections, settings.duration, used)
                    if scenario.service == "hello":
                        ceiling = result.requests_per_second
                    elif ceiling:
                        result.share = result.requests_per_second / ceiling
                    results.append(result)
                    print(row(result), flush=True)
                    if scenario.name == "login":  # let users finish the hashing wrk left behind
                        time.sleep(connections * 0.3)
    return results


HEADER = (
    "| scenario | connections | req/s | p50 ms | p99 ms | max ms | errors "
    "| share of ceiling | goal | met |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def row(result: Result) -> str:
    share = f"{result.share:.2f}" if result.share is not None else "1.00"
    goal = f"≥ {result.scenario.goal:.2f}" if result.scenario.goal else ""
    return (
        f"| {result.scenario.name} | {result.connections} | {result.requests_per_second:.0f} "
        f"| {result.p50_ms:.2f} | {result.p99_ms:.2f} | {result.max_ms:.1f} | {result.errors} "
        f"| {share} | {goal} | {result.met} |"
    )


def machine_description(settings: Settings) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}\n"
        f"- machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}\n"
        f"- servers: gunicorn gthread, {settings.workers} workers x {settings.threads} threads "
        "per service, all on core 0; SQLite (WAL) on a temporary folder\n"
        f"- load: wrk, 1 thread, on core 1; {settings.duration} s per run after a "
        f"{settings.warmup} s warm-up; {settings.users} users, tokens round-robin"
    )


def main(settings: Settings, record: Path | None = None) -> None:
    print(HEADER)
    results = run(settings)
    print()
    print(machine_description(settings))
    if record:
        table = "\n".join([HEADER, *(row(r) for r in results)])
        # What people wrote about the last run, from its "## Reading it" on, stays.
        reading = record.read_text().partition("\n## Reading it")[1:] if record.exists() else ()
        record.write_text(
            "# Benchmark results\n\nMade by `inv bench --record`.\n\n"
            f"{machine_description(settings)}\n\n{table}\n" + "".join(reading)
        )
        print(f"\nrecorded in {record}")


if __name__ == "__main__":
    main(Settings(duration=int(sys.argv[1]) if len(sys.argv) > 1 else 10))
