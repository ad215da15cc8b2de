"""Load benchmark: the three services under wrk, against a bare Flask ceiling.

The services run with production settings on temporary SQLite databases, and
a bare Flask app runs under each candidate server, all pinned to the first
core; wrk runs on the second. The ceiling is the fastest bare Flask server at
that number of connections in the same run, and every scenario is reported as
its share of it, with the CPU time the services spent per request. For the
scenarios that cross services, each neighbour's CPU per call is put next to
its CPU per request when wrk asks it directly at the same rate.
"""

from __future__ import annotations

import importlib
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from launcher import SERVICES as LAUNCHED

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPTS = Path(__file__).resolve().parent / "wrk"
PASSWORD = "bench-password"
LOGIN_FORM = f"username=bench0&password={PASSWORD}"
MILLISECONDS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
# An access log line: "... GET /path 503 1.2ms"; its status.
ACCESS_LINE = re.compile(r"servicekit\.access .* (\d\d\d) [\d.]+ms$")


@dataclass(frozen=True)
class Call:
    """A request orders makes of a neighbour, as wrk can make it directly."""

    service: str
    path: str
    with_token: bool = True


@dataclass(frozen=True)
class Scenario:
    name: str
    service: str  # a service, or a bare Flask server (a key of CEILING_SERVERS)
    path: str
    goal: float | None = None  # share of the ceiling to reach
    method: str = "GET"
    body: str | None = None
    with_tokens: bool = False
    script: str = "request.lua"
    calls: tuple[Call, ...] = ()  # what orders asks its neighbours while serving it


SERVICES = tuple(LAUNCHED)  # users, beers, orders
# Seven servers of two workers each start at once on one core: on a busy
# machine that takes longer than one service's start is given.
STARTING_SECONDS = 120.0
# Bare Flask under each server worth comparing, with the same worker count:
# granian's own WSGI interface, and granian with our front as the services run.
CEILING_SERVERS = (
    "hello (gunicorn sync)",
    "hello (gunicorn gthread)",
    "hello (granian wsgi)",
    "hello (granian + front)",
)

# What orders asks users and beers (servicekit.upstream, orders.beers_client).
ASK_USERS = Call("users", "/api/users/me")
ASK_BEERS = Call("beers", "/api/beers/123456", with_token=False)

SCENARIOS = (
    *(Scenario(server, server, "/") for server in CEILING_SERVERS),
    Scenario("beer_get", "beers", "/api/beers/123456", goal=0.50),
    Scenario("beers_list", "beers", "/api/beers/", goal=0.40),
    Scenario("token_check", "users", "/api/users/check_token", 0.50, "POST", with_tokens=True),
    Scenario(
        "order_get",
        "orders",
        "/api/orders/current",
        0.25,
        with_tokens=True,
        calls=(ASK_USERS,),
    ),
    Scenario(
        "order_add",
        "orders",
        "/api/orders/current",
        0.15,
        "PUT",
        "sku=123456&quantity=1",
        with_tokens=True,
        calls=(ASK_USERS, ASK_BEERS),
    ),
    Scenario(
        "checkout",
        "orders",
        "/",
        with_tokens=True,
        script="checkout.lua",
        calls=(ASK_USERS, ASK_BEERS),  # (a checkout asks for its beers as a list)
    ),
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
    cpu_us: dict[str, float] = field(default_factory=dict)  # per request, by service
    share: float | None = None

    @property
    def met(self) -> str:
        if self.scenario.goal is None or self.share is None:
            return ""
        return "yes" if self.share >= self.scenario.goal and not self.errors else "NO"


@dataclass
class Hop:
    """A neighbour's cost per call from orders, next to its cost per request
    when wrk asks it the same directly, at about the same rate."""

    scenario: str
    connections: int
    neighbour: str
    calls_per_second: float
    cpu_per_call_us: float
    switches_per_call: float
    direct_per_second: float
    cpu_per_direct_us: float
    switches_per_direct: float

    @property
    def overhead(self) -> float:
        """How many times a direct request's CPU a call costs (the goal: ≤ 1.3)."""
        return self.cpu_per_call_us / self.cpu_per_direct_us if self.cpu_per_direct_us else 0.0


@dataclass(frozen=True)
class Usage:
    """CPU seconds and context switches spent so far by a tree of processes."""

    cpu_seconds: float
    switches: int

    def __sub__(self, before: Usage) -> Usage:
        return Usage(self.cpu_seconds - before.cpu_seconds, self.switches - before.switches)


@dataclass
class Settings:
    duration: int = 10
    connections: tuple[int, ...] = (4, 64)
    workers: int = 2
    warmup: int = 2
    users: int = 1024  # checkout: a user's add and checkout are this many requests apart
    only: tuple[str, ...] = ()  # scenarios to run (the ceilings always run); all if empty
    extra: dict[str, str] = field(default_factory=dict)


def pinned(argv: list[str], core: int) -> list[str]:
    """Pin to one core where the machine has two or more, as the goals assume."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core), *argv]
    return argv


def ceiling_argv(server: str, port: int, workers: int) -> list[str]:
    """A bare Flask app under one of CEILING_SERVERS."""
    if server == "hello (granian + front)":
        from launcher import server_argv

        return server_argv("bench.hello", "127.0.0.1", port, workers)
    if server == "hello (granian wsgi)":  # as the services ran before the front
        return [
            *(sys.executable, "-m", "granian", "--interface", "wsgi", "--factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
            *("--blocking-threads", "128", "--backpressure", "1024", "--log-level", "error"),
            *("--working-dir", str(ROOT), "bench.hello:create_app"),
        ]
    worker_class = "gthread" if "gthread" in server else "sync"
    return [
        *(sys.executable, "-m", "gunicorn", "bench.hello:create_app()"),
        *("--bind", f"127.0.0.1:{port}", "--workers", str(workers)),
        *("--worker-class", worker_class, "--threads", "4", "--log-level", "warning"),
        *("--chdir", str(ROOT), "--no-control-socket"),
    ]


@dataclass
class Shop:
    urls: dict[str, str]
    servers: dict[str, subprocess.Popen[bytes]]
    folder: Path

    def log_sizes(self) -> dict[str, int]:
        return {name: (self.folder / f"{name}.log").stat().st_size for name in SERVICES}

    def answered_since(self, sizes: dict[str, int]) -> Counter[str]:
        """The requests the services logged since `sizes`, counted by service
        and status (every request is logged at INFO, a failure at any level)."""
        answered: Counter[str] = Counter()
        for name, size in sizes.items():
            with open(self.folder / f"{name}.log", "rb") as log:
                log.seek(size)
                for line in log.read().decode(errors="replace").splitlines():
                    found = ACCESS_LINE.search(line)
                    if found:
                        answered[f"{name} {found.group(1)}"] += 1
        return answered

    def services_usage(self) -> dict[str, Usage]:
        """What each service's processes, workers included, have spent so far."""
        return {name: tree_usage(self.servers[name].pid) for name in SERVICES}


def failures_of(answered: Counter[str]) -> Counter[str]:
    return Counter({key: n for key, n in answered.items() if key.split()[1][0] in "45"})


def requests_of(answered: Counter[str], service: str) -> int:
    return sum(n for key, n in answered.items() if key.split()[0] == service)


def tree_usage(pid: int) -> Usage:
    """CPU time (user and system) and context switches (voluntary or not) of a
    process and all its live descendants, every thread of each."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    ticks, switches, todo = 0, 0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            ticks += int(stats[current][11]) + int(stats[current][12])
            switches += context_switches(current)
        todo.extend(children.get(current, []))
    return Usage(ticks / os.sysconf("SC_CLK_TCK"), switches)


def context_switches(pid: int) -> int:
    """The context switches of a process's live threads so far."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            status = (task / "status").read_text()
        except OSError:
            continue  # a thread that just ended
        total += sum(
            int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line
        )
    return total


@contextmanager
def running_shop(settings: Settings, folder: Path) -> Iterator[Shop]:
    """Users, beers, orders and the bare Flask servers, served; yields where they are."""
    from launcher import (
        NotReady,
        free_port,
        server_argv,
        server_env,
        setup_service,
        wait_until_ready,
    )

    names = (*SERVICES, *CEILING_SERVERS)
    ports = {name: free_port() for name in names}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    databases = {svc: f"sqlite:///{folder / svc}.db" for svc in SERVICES}
    for service, url in databases.items():
        setup_service(service, database_url=url, seed="yes")
    servers: dict[str, subprocess.Popen[bytes]] = {}
    logs = []
    try:
        for name, port in ports.items():
            if name in SERVICES:
                argv = server_argv(name, "127.0.0.1", port, settings.workers)
            else:
                argv = ceiling_argv(name, port, settings.workers)
            env = server_env(databases.get(name))
            env.update(USERS_URL=urls["users"], BEERS_URL=urls["beers"])
            env.update(settings.extra)
            log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - closed with the server
            logs.append(log)
            servers[name] = subprocess.Popen(pinned(argv, 0), env=env, stderr=log, cwd=ROOT)
        for name, url in urls.items():
            try:  # given the server, a server that exits is said at once
                where = url + ("/ready" if name in SERVICES else "/")
                wait_until_ready(where, servers[name], timeout=STARTING_SECONDS)
            except NotReady as error:
                log_end = (folder / f"{name}.log").read_text(errors="replace")[-300:]
                raise NotReady(f"{name}: {error}; its log ends: {log_end!r}") from error
        yield Shop(urls, servers, folder)
    finally:
        for server in servers.values():
            server.terminate()
        for server in servers.values():
            server.wait(timeout=20)
        for log in logs:
            log.close()


def make_users(folder: Path, count: int) -> list[str]:
    """Bench users and a live token each, written straight into users' database
    (registering them over HTTP would cost two slow password hashes apiece)."""
    import secrets
    from datetime import timedelta

    from werkzeug.security import generate_password_hash

    from launcher import service_context
    from servicekit.db import write_transaction
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
    scenario: Scenario,
    url: str,
    connections: int,
    seconds: int,
    tokens: list[str],
    pause_ms: float | None = None,
) -> tuple[Result, int]:
    """wrk's result and how many requests it made; with `pause_ms`, each
    connection waits that long (on average) after an answer before it asks again."""
    env = dict(os.environ, METHOD=scenario.method, TOKENS=",".join(tokens))
    if scenario.body:
        env["BODY"] = scenario.body
    if pause_ms is not None:
        env["PAUSE_MS"] = f"{pause_ms:.3f}"
    argv = [
        *("wrk", "--threads", "1", "--connections", str(connections)),
        *("--duration", f"{seconds}s", "--timeout", "5s", "--latency"),
        *("--script", str(WRK_SCRIPTS / scenario.script), url + scenario.path),
    ]
    output = subprocess.run(
        pinned(argv, 1), env=env, capture_output=True, text=True, check=True
    ).stdout
    result, count = parse_wrk(scenario, connections, output)
    return result, count


def parse_wrk(scenario: Scenario, connections: int, output: str) -> tuple[Result, int]:
    """The result of a wrk run, and how many requests it made."""

    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\b", output, re.MULTILINE)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value * MILLISECONDS[unit]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
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
    ), int(count.group(1)) if count else 0


def missing_tools() -> list[str]:
    """What the benchmark needs that is not installed, each with how to install it:
    wrk, and gunicorn, which runs two of the ceilings (a development tool:
    requirements.txt alone lacks it)."""
    missing = []
    if not shutil.which("wrk"):
        missing.append("wrk (apt-get install wrk)")
    if not importable("gunicorn"):
        missing.append(
            f"gunicorn ({Path(sys.executable).parent / 'pip'} install -r requirements-dev.txt)"
        )
    return missing


def importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def run(settings: Settings) -> tuple[list[Result], list[Hop]]:
    results: list[Result] = []
    hops: list[Hop] = []
    with tempfile.TemporaryDirectory(prefix="shop-bench-") as tmp:
        folder = Path(tmp)
        with running_shop(settings, folder) as shop:
            tokens = make_users(folder, settings.users)
            for connections in settings.connections:
                results.extend(run_at(shop, settings, connections, tokens, hops))
    return results, hops


def run_at(
    shop: Shop, settings: Settings, connections: int, tokens: list[str], hops: list[Hop]
) -> list[Result]:
    """Every scenario at one number of connections, as shares of the ceiling;
    each cross-service one's hops are added to `hops`."""
    results: list[Result] = []
    ceiling = 0.0
    for scenario in SCENARIOS:
        if settings.only and scenario.service in SERVICES and scenario.name not in settings.only:
            continue
        url = shop.urls[scenario.service]
        used = tokens if scenario.with_tokens else []
        if settings.warmup:
            run_wrk(scenario, url, connections, settings.warmup, used)
        before, logged_before = shop.services_usage(), shop.log_sizes()
        started = time.monotonic()
        result, count = run_wrk(scenario, url, connections, settings.duration, used)
        seconds = time.monotonic() - started
        answered = shop.answered_since(logged_before)
        spent = {name: usage - before[name] for name, usage in shop.services_usage().items()}
        if scenario.service in SERVICES and count:
            for name in SERVICES:
                micros = spent[name].cpu_seconds / count * 1e6
                if micros >= 5:  # a service the scenario touches, not idle noise
                    result.cpu_us[name] = micros
        if scenario.service in CEILING_SERVERS:
            ceiling = max(ceiling, result.requests_per_second)
        else:
            result.share = result.requests_per_second / ceiling
        results.append(result)
        print(row(result), flush=True)
        failures = failures_of(answered)
        if failures:
            print(f"<!-- {scenario.name}: {dict(failures)} -->", flush=True)
        for call in scenario.calls:
            calls = requests_of(answered, call.service)
            if calls:
                direct = measure_direct(shop, settings, call, connections, calls / seconds, tokens)
                hops.append(hop_of(scenario, connections, call, calls, seconds, spent, direct))
        if scenario.name == "login":  # let users finish the hashing wrk left behind
            time.sleep(connections * 0.3)
    return results


def measure_direct(
    shop: Shop, settings: Settings, call: Call, connections: int, rate: float, tokens: list[str]
) -> tuple[float, Usage, int]:
    """wrk asks the neighbour what orders asked, over as many connections, at
    about `rate` requests a second: its requests a second, what the neighbour
    spent, and how many requests wrk made.

    wrk has no rate of its own; each connection pauses between an answer and
    its next request. A first run finds how long an answer takes (its median:
    a stall of the busy machine would make the mean say the rate is out of
    reach), the second pauses that much less than the interval."""
    scenario = Scenario(
        f"{call.service} direct", call.service, call.path, with_tokens=call.with_token
    )
    url, used = shop.urls[call.service], tokens if call.with_token else []
    interval_ms = connections * 1000 / rate  # between a connection's requests
    trial, _ = run_wrk(scenario, url, connections, max(settings.warmup, 1), used, interval_ms)
    answer_ms = 0.0 if math.isnan(trial.p50_ms) else trial.p50_ms
    pause_ms = max(interval_ms - answer_ms, 0.0)
    before = shop.services_usage()[call.service]
    result, count = run_wrk(scenario, url, connections, settings.duration, used, pause_ms)
    spent = shop.services_usage()[call.service] - before
    return result.requests_per_second, spent, count


def hop_of(
    scenario: Scenario,
    connections: int,
    call: Call,
    calls: int,
    seconds: float,
    spent: dict[str, Usage],
    direct: tuple[float, Usage, int],
) -> Hop:
    direct_rate, direct_spent, direct_count = direct
    neighbour = spent[call.service]
    per_direct = max(direct_count, 1)
    hop = Hop(
        scenario.name,
        connections,
        call.service,
        calls / seconds,
        neighbour.cpu_seconds / calls * 1e6,
        neighbour.switches / calls,
        direct_rate,
        direct_spent.cpu_seconds / per_direct * 1e6,
        direct_spent.switches / per_direct,
    )
    print(f"<!-- hop: {hop_row(hop)} -->", flush=True)
    return hop


HEADER = (
    "| scenario | connections | req/s | p50 ms | p99 ms | max ms | errors "
    "| CPU µs/req | by service | share of ceiling | goal | met |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"
)


def row(result: Result) -> str:
    share = f"{result.share:.2f}" if result.share is not None else ""
    goal = f"≥ {result.scenario.goal:.2f}" if result.scenario.goal else ""
    cpu = f"{sum(result.cpu_us.values()):.0f}" if result.cpu_us else ""
    by_service = " · ".join(f"{name} {spent:.0f}" for name, spent in result.cpu_us.items())
    return (
        f"| {result.scenario.name} | {result.connections} | {result.requests_per_second:.0f} "
        f"| {result.p50_ms:.2f} | {result.p99_ms:.2f} | {result.max_ms:.1f} | {result.errors} "
        f"| {cpu} | {by_service} | {share} | {goal} | {result.met} |"
    )


HOP_INTRODUCTION = (
    "Each neighbour's cost per call from orders (calls counted in its access "
    "log), next to its cost per request when wrk asks it the same directly over "
    "as many connections at about the same rate:"
)
HOP_HEADER = (
    "| scenario | connections | neighbour | calls/s | CPU µs/call | switches/call "
    "| direct req/s | CPU µs/direct req | switches/direct req | call ÷ direct |\n"
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
)


def hop_row(hop: Hop) -> str:
    return (
        f"| {hop.scenario} | {hop.connections} | {hop.neighbour} | {hop.calls_per_second:.0f} "
        f"| {hop.cpu_per_call_us:.0f} | {hop.switches_per_call:.1f} "
        f"| {hop.direct_per_second:.0f} | {hop.cpu_per_direct_us:.0f} "
        f"| {hop.switches_per_direct:.1f} | {hop.overhead:.2f} |"
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
        "- servers: granian with our front (servicekit.serving), "
        f"{settings.workers} workers per service; "
        f"the ceilings likewise {settings.workers} workers; all on core 0; SQLite (WAL) "
        "on a temporary folder\n"
        f"- load: wrk, 1 thread, on core 1; {settings.duration} s per run after a "
        f"{settings.warmup} s warm-up; {settings.users} users, tokens round-robin"
    )


def main(settings: Settings, record: Path | None = None) -> None:
    missing = missing_tools()
    if missing:
        raise SystemExit(f"inv bench needs what is not installed: {'; '.join(missing)}")
    print(HEADER)
    results, hops = run(settings)
    hop_table = "\n".join([HOP_HEADER, *(hop_row(hop) for hop in hops)])
    print(f"\n{HOP_INTRODUCTION}\n\n{hop_table}\n")
    print(machine_description(settings))
    if record:
        table = "\n".join([HEADER, *(row(r) for r in results)])
        table += f"\n\n{HOP_INTRODUCTION}\n\n{hop_table}"
        # What people wrote about the last run, from its "## Reading it" on, stays.
        reading = record.read_text().partition("\n## Reading it")[1:] if record.exists() else ()
        record.write_text(
            "# Benchmark results\n\nMade by `inv bench --record`.\n\n"
            f"{machine_description(settings)}\n\n{table}\n" + "".join(reading)
        )
        print(f"\nrecorded in {record}")


if __name__ == "__main__":
    main(Settings(duration=int(sys.argv[1]) if len(sys.argv) > 1 else 10))
