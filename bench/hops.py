"""Where a request that crosses services spends its CPU, hop by hop: the three
services served as in `inv bench`, wrk sending one scenario, and Linux `perf`
sampling each service's processes (kernel and native code included), so that
each service's CPU per request is split by where it runs.

    python -m bench.hops [scenario] [connections] [seconds]   (order_add 4 10)

Needs `perf` (linux-perf) and the right to sample other processes (root, or
kernel.perf_event_paranoid at most 1). perf shows Python's own frames only
as the interpreter (libpython): where py-spy is installed (`pip install
py-spy`, a measuring tool, not a requirement), a second run of the same
scenario samples each service's Python stacks and splits its Python time by
what the code is doing.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.run import SCENARIOS, SERVICES, Settings, Shop, make_users, run_wrk, running_shop

SAMPLES_PER_SECOND = 4999
# Where a sample's code lives, by its shared object, then (in the kernel) by
# its symbol; the first match wins.
PLACES = (
    ("libpython", "Python interpreter"),
    ("_granian", "granian (Rust: HTTP, tokio)"),
    ("loop.cpython", "uvloop (event loop)"),  # uvloop/loop.cpython-*.so
    ("libcurl", "libcurl"),
    ("sqlite", "SQLite"),
    ("orjson", "orjson"),
    ("libc.so", "libc (malloc, memcpy, locks)"),
    ("libc-", "libc (malloc, memcpy, locks)"),
    ("ld-linux", "libc (malloc, memcpy, locks)"),
    ("jemalloc", "jemalloc"),
    ("ssl", "OpenSSL (hashes)"),
    ("libcrypto", "OpenSSL (hashes)"),
)
KERNEL_PLACES = (
    (("futex",), "kernel: futex (GIL, locks, thread wake-ups)"),
    (("epoll", "ep_"), "kernel: epoll"),
    # Sampled by a timer, time with interrupts off (switching, waking a
    # thread) shows where they are turned back on: the unlock_irq* symbols.
    (
        ("schedule", "switch_to", "finish_task", "pick_next", "enqueue", "dequeue", "wake")
        + ("unlock_irq",),
        "kernel: scheduler (switches, wake-ups)",
    ),
    (
        ("page_fault", "tlb", "unmap", "mm_", "anonymous_page", "folio", "memcg", "mas_")
        + ("kmem_cache", "page"),
        "kernel: memory (page faults, mappings)",
    ),
    (
        ("tcp", "ip_", "sock", "skb", "net_", "__dev", "loopback", "inet", "nf_", "sk_"),
        "kernel: TCP over loopback",
    ),
    (("entry_", "syscall", "do_syscall", "exit_to_user"), "kernel: system call entry and exit"),
)


def place_of(dso: str, symbol: str) -> str:
    if dso == "[kernel.kallsyms]" or symbol.startswith("[k]"):
        name = symbol.removeprefix("[k]").strip()
        for needles, place in KERNEL_PLACES:
            if any(needle in name for needle in needles):
                return place
        return "kernel: other"
    for needle, place in PLACES:
        if needle in dso:
            return place
    return "other native code (extensions, unresolved)"


PYTHON_SAMPLES_PER_SECOND = 250
# What a Python stack is doing, by the deepest frame that holds one of these
# (py-spy's raw lines: "frame;frame;... count", a frame "function
# (file:line)"); a stack with none of them is "other".
PYTHON_PLACES = (
    ("logging/", "access log line (logging)"),
    ("pycurl", "calls to neighbours (pycurl)"),
    ("servicekit/upstream.py", "calls to neighbours (pycurl)"),
    ("sqlalchemy", "database (SQLAlchemy, sqlite3)"),
    ("sqlite3", "database (SQLAlchemy, sqlite3)"),
    ("servicekit/db.py", "database (SQLAlchemy, sqlite3)"),
    ("marshmallow", "input and output (webargs, marshmallow, orjson)"),
    ("webargs", "input and output (webargs, marshmallow, orjson)"),
    ("servicekit/intake.py", "input and output (webargs, marshmallow, orjson)"),
    ("servicekit/output.py", "input and output (webargs, marshmallow, orjson)"),
    ("prometheus_client", "request ids, metrics (servicekit.observability)"),
    ("servicekit/observability.py", "request ids, metrics (servicekit.observability)"),
    ("users/", "the service's own code"),
    ("beers/", "the service's own code"),
    ("orders/", "the service's own code"),
    ("flask/", "Flask, Werkzeug, APIFlask"),
    ("werkzeug/", "Flask, Werkzeug, APIFlask"),
    ("apiflask/", "Flask, Werkzeug, APIFlask"),
    # Where the front's own frame is the deepest: the request thread's last
    # line (the answer handed to the loop's thread; non-blocking sampling
    # catches a thread there more often than it stays: bench/RESULTS.md),
    # and the loop handing the answer to granian.
    ("Front._answer", "the front: the request thread's last line (call_soon_threadsafe)"),
    ("Front.__rsgi__", "the front on the loop: the request read, the answer sent"),
    ("front.py", "the front: the environ, the request thread"),
    ("servicekit/", "servicekit's hooks around the app"),
    ("threading.py", "request threads: waking, queue"),
    ("queue.py", "request threads: waking, queue"),
    ("asyncio", "event loop (asyncio, uvloop, granian)"),
    ("granian", "event loop (asyncio, uvloop, granian)"),
)


def python_place_of(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for needle, place in PYTHON_PLACES:
            if needle in frame:
                return place
    return "other"


def python_samples_by_place(raw: Path) -> Counter[str]:
    places: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit():
            places[python_place_of(stack)] += int(count)
    return places


def tree_pids(pid: int) -> list[int]:
    """A process and its descendants (a server's master and workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        children = Path(f"/proc/{current}/task/{current}/children")
        if children.exists():
            todo.extend(int(child) for child in children.read_text().split())
    return found


def samples_by_place(data: Path) -> Counter[str]:
    """The samples of one perf recording, by place."""
    report = subprocess.run(
        [
            *("perf", "report", "--input", str(data), "--stdio", "--no-children"),
            *("--sort", "dso,sym", "--show-nr-samples", "--percent-limit", "0"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    places: Counter[str] = Counter()
    for line in report.splitlines():
        fields = line.split()
        if line.startswith("#") or len(fields) < 4 or not fields[0].endswith("%"):
            continue
        samples, dso, symbol = int(fields[1]), fields[2], " ".join(fields[3:])
        places[place_of(dso, symbol)] += samples
    return places


def profile(
    shop: Shop, scenario_name: str, connections: int, seconds: int, folder: Path, tokens: list[str]
) -> None:
    scenario = next(s for s in SCENARIOS if s.name == scenario_name)
    tokens = tokens if scenario.with_tokens else []
    url = shop.urls[scenario.service]
    run_wrk(scenario, url, connections, 3, tokens)  # every thread a request needs, started
    recorders = {
        name: subprocess.Popen(
            [
                *("perf", "record", "--quiet", "-e", "cpu-clock"),
                *("-F", str(SAMPLES_PER_SECOND), "-o", str(folder / f"{name}.perf")),
                *("-p", ",".join(str(pid) for pid in tree_pids(shop.servers[name].pid))),
            ],
            stderr=subprocess.DEVNULL,
        )
        for name in SERVICES
    }
    time.sleep(1)  # perf attaches to every thread
    result, count = run_wrk(scenario, url, connections, seconds, tokens)
    for recorder in recorders.values():
        recorder.send_signal(signal.SIGINT)
    for recorder in recorders.values():
        recorder.wait(timeout=60)
    print(
        f"{scenario.name}, {connections} connections, {seconds} s: {count} requests "
        f"({result.requests_per_second:.0f}/s), {result.errors} errors; "
        f"µs of CPU per request, sampled at {SAMPLES_PER_SECOND} Hz\n"
    )
    for name in SERVICES:
        places = samples_by_place(folder / f"{name}.perf")
        total = sum(places.values())
        if not total:
            continue
        print(f"| {name}: where its CPU goes | µs per {scenario.name} | share |\n|---|---:|---:|")
        for place, samples in places.most_common():
            micros = samples / SAMPLES_PER_SECOND / count * 1e6
            print(f"| {place} | {micros:.0f} | {samples / total:.0%} |")
        print(f"| **all** | {total / SAMPLES_PER_SECOND / count * 1e6:.0f} | |\n")


def profile_python(
    shop: Shop,
    scenario_name: str,
    connections: int,
    seconds: int,
    folder: Path,
    tokens: list[str],
    spy: str,
) -> None:
    """The same scenario again, each service's workers sampled by py-spy."""
    scenario = next(s for s in SCENARIOS if s.name == scenario_name)
    tokens = tokens if scenario.with_tokens else []
    url = shop.urls[scenario.service]
    spies = {
        name: subprocess.Popen(
            [
                *(spy, "record", "--gil", "--nonblocking", "--subprocesses", "--format", "raw"),
                *("--rate", str(PYTHON_SAMPLES_PER_SECOND), "--duration", str(seconds)),
                *("--output", str(folder / f"{name}.stacks")),
                *("--pid", str(shop.servers[name].pid)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in SERVICES
    }
    time.sleep(1)
    _, count = run_wrk(scenario, url, connections, seconds, tokens)
    for spy_process in spies.values():
        spy_process.wait(timeout=120)
    print(
        f"Python stacks (py-spy, {PYTHON_SAMPLES_PER_SECOND} Hz a process, the thread holding "
        f"the GIL), {count} requests: shares of each service's samples (non-blocking "
        "sampling counts no time, only where the samples fall)\n"
    )
    for name in SERVICES:
        places = python_samples_by_place(folder / f"{name}.stacks")
        total = sum(places.values())
        if not total:
            continue
        print(f"| {name}: its Python time | share |\n|---|---:|")
        for place, samples in places.most_common():
            print(f"| {place} | {samples / total:.0%} |")
        print()


def main(scenario: str = "order_add", connections: int = 4, seconds: int = 10) -> None:
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    with tempfile.TemporaryDirectory(prefix="shop-hops-") as tmp:
        folder = Path(tmp)
        with running_shop(Settings(), folder) as shop:
            tokens = make_users(folder, 1024)
            profile(shop, scenario, connections, seconds, folder, tokens)
            if spy:
                profile_python(shop, scenario, connections, seconds, folder, tokens, spy)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main(
        arguments[0] if arguments else "order_add",
        int(arguments[1]) if len(arguments) > 1 else 4,
        int(arguments[2]) if len(arguments) > 2 else 10,
    )
