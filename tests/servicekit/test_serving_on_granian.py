"""servicekit.serving builds its server on granian's MPServer and overrides or
calls parts of it no public API offers (granian has none for a master that
listens itself, respawns without a crash-loop exit, or rolls workers on SIGHUP).
serving.py is the one module that does; these tests pin what it relies on in
granian 2.8.9, so an upgrade that moves any of it fails here, by name, rather
than in a server that stops or restarts wrongly."""

from __future__ import annotations

import inspect
import socket

import pytest
from granian._granian import SocketHolder
from granian.server import MPServer
from granian.server.mp import WorkerProcess

from servicekit.serving import GRACE_SECONDS, ShopServer, listen

# What ShopServer overrides or calls, with the signature it was written against.
METHODS = {
    "_init_shared_socket": "(self)",
    "_drop_shared_socket": "(self)",
    "_stop_workers": "(self)",
    "_serve_loop": "(self, spawn_target, target_loader)",
    "_spawn_worker": "(self, idx, target, callback_loader) -> granian.server.mp.WorkerProcess",
    "signal_handler_interrupt": "(self, *args, **kwargs)",
    "_call_hooks": "(hooks)",
}
# The master's state it reads and changes.
STATE = (
    "wrks",
    "interrupt_children",
    "reload_signal",
    "main_loop_interrupt",
    "_metrics",
    "hooks_reload",
)
# What it reads of a worker.
WORKER_STATE = ("inner", "idx", "birth", "interrupt_by_parent")


@pytest.mark.parametrize(("name", "signature"), METHODS.items())
def test_each_method_serving_overrides_or_calls_is_granians_as_it_was(
    name: str, signature: str
) -> None:
    assert str(inspect.signature(getattr(MPServer, name))) == signature


def test_the_masters_and_workers_state_serving_uses_is_there() -> None:
    with listen("127.0.0.1", 0) as listener:
        server = ShopServer(listener, target="none", workers_kill_timeout=GRACE_SECONDS)
        worker = WorkerProcess(server, 0, print, ())

        assert [name for name in STATE if not hasattr(server, name)] == []
        assert [name for name in WORKER_STATE if not hasattr(worker, name)] == []


def test_a_socket_holder_takes_the_masters_listening_socket() -> None:
    # Its stub names no arguments: the fd, whether it is a Unix socket, the backlog.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        holder = SocketHolder(listener.fileno(), False, 128)  # type: ignore[call-arg]

        assert holder.get_fd() is not None
        assert holder.is_uds() is False
