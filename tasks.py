"""The shop's command line: `inv users setup|serve|migrate|create-admin|unthrottle`,
`inv beers setup|serve|migrate`, `inv orders ...`, `inv up`, `inv test`,
`inv check`, `inv fuzz`, `inv bench`. `inv <service> --help` lists its actions.

Only the commands are here; launcher.py knows the services and starts them.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import logging
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from getpass import getpass
from pathlib import Path
from typing import Any

import requests
from invoke import Argument, Collection, Context, Exit, ParseError, ParserContext, Task, task

import launcher
from launcher import DEFAULT_HOST, DEFAULT_WORKERS, SERVICES, LaunchError, ServiceEntry
from servicekit.config import BadSetting, log_settings, service_database_url, share_a_secret_key
from servicekit.db import DatabaseProblem
from servicekit.logs import configure_logging
from servicekit.migrations import (
    UnknownRevision,
    UnversionedDatabase,
    migration_target,
    new_revision,
    step_to,
)

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent
# npm ci writes node_modules' own copy of the lock file when it is done.
NODE_TOOLS = ROOT / "node_modules" / ".package-lock.json"
NODE_LOCK = ROOT / "package-lock.json"
USAGE_ERROR = 2  # as for a flag invoke itself does not know
HELP_WORDS = ("--help", "-h", "help")
ADMIN_PASSWORD_VARIABLE = "SHOP_ADMIN_PASSWORD"
# The whole numbers a flag takes, by flag: (least, most); any other at least 1.
NUMBER_RANGES: dict[str, tuple[int, int | None]] = {
    "port": (1, 65535),
    "base_port": (1, 65535 - 2),  # three services on it and the next two
}
# What an operator can put right: one line and exit status 1 (one_line_errors).
OPERATOR_MISTAKES = (LaunchError, DatabaseProblem, BadSetting, UnknownRevision, UnversionedDatabase)


@contextmanager
def one_line_errors(command: str) -> Iterator[None]:
    """An operator's usual mistakes (a setting or database URL that will not do,
    a database that cannot be reached, a revision there is not, a port in use)
    as one line and exit status 1. With LOG_LEVEL=DEBUG the traceback too."""
    try:
        yield
    except OPERATOR_MISTAKES as error:
        if os.environ.get("LOG_LEVEL", "").upper() == "DEBUG":
            raise
        raise Exit(f"{command}: {error}", code=1) from error


class WholeNumberArgument(Argument):
    """A flag that takes a whole number: anything else, or one out of its range
    (NUMBER_RANGES), is one line naming the flag, not a traceback."""

    def set_value(self, value: Any, cast: bool = True) -> None:
        if cast and self.kind is int:
            least, most = NUMBER_RANGES.get(self.attr_name or self.name or "", (1, None))
            number = int(value) if str(value).strip().isdigit() else None
            if number is None or number < least or (most is not None and number > most):
                wanted = f"from {least} to {most}" if most else f"of at least {least}"
                flag = (self.name or "").replace("_", "-")
                raise ParseError(f"inv: --{flag} takes a whole number {wanted}, not {value!r}")
        super().set_value(value, cast)


def checked(argument: Argument) -> Argument:
    """The argument, refusing values of the wrong shape in one line if it is a number."""
    if argument.kind is not int:
        return argument
    copied = ("names", "kind", "default", "help", "positional", "optional", "attr_name")
    return WholeNumberArgument(**{field: getattr(argument, field) for field in copied})


class ShopTask(Task):
    """A task whose number flags refuse anything but whole numbers in one line."""

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        return [checked(argument) for argument in super().get_arguments(ignore_unknown_help)]


def start_logging(label: str) -> None:
    """This command's log lines like the services': labelled, LOG_FORMAT, LOG_LEVEL."""
    try:
        configure_logging(label, *log_settings())
    except ValueError as error:  # an unknown format or level (BadSetting is one)
        raise Exit(f"inv: {error}", code=1) from error


# The service commands: a task per verb, and `inv <service> VERB [--flags]` to
# run one. invoke would take `inv users serve` for two tasks, `users` and
# `serve`, and a collection per service would list `users.serve` rather than
# `users` in `inv --list`; so each service is one task that hands its action to
# the verb, whose flags are invoke's own (the signature's types, help=). The
# letters for them are the service task's to give (-h stays help), not invoke's.

RESET_HELP = {"reset": "drop the service's tables and data first"}


@task(auto_shortflags=False, help=RESET_HELP)
def setup(c: Context, service: str, reset: bool = False) -> None:
    """Upgrade the database to the latest schema, keeping its rows."""
    launcher.setup_service(service, reset=reset)


@task(
    name="setup",
    auto_shortflags=False,
    help={**RESET_HELP, "seed": "load the demo catalogue too (entries already there are kept)"},
)
def setup_and_seed(c: Context, service: str, reset: bool = False, seed: bool = False) -> None:
    """Upgrade the database to the latest schema, keeping its rows."""
    launcher.setup_service(service, reset=reset, seed="yes" if seed else "no")


@task(
    auto_shortflags=False,
    help={
        "host": f"address to serve on (default {DEFAULT_HOST})",
        "port": "port to serve on (default: the service's own)",
        "workers": f"worker processes (default {DEFAULT_WORKERS})",
    },
)
def serve(c: Context, service: str, host: str = "", port: int = 0, workers: int = 0) -> None:
    """Set up, then serve with granian; Ctrl-C stops it."""
    host = host or DEFAULT_HOST
    port = port or SERVICES[service].port
    launcher.check_ports_free(host, {service: port})
    database_url = os.environ.get("DATABASE_URL")
    launcher.setup_service(service, database_url=database_url)
    workers = workers or DEFAULT_WORKERS
    argv = launcher.server_argv(service, host, port, workers)
    url = f"http://{launcher.reachable_at(host)}:{port}"
    processes = f"{workers} worker{'s' if workers > 1 else ''}"
    log.info("serving on %s:%d, %s; the API docs: %s/api/docs", host, port, processes, url)
    sys.stdout.flush()
    # The server takes this process's place, so Ctrl-C and kill reach it.
    os.execve(argv[0], argv, launcher.server_env(database_url))


@task(
    auto_shortflags=False,
    help={"to": "the revision: an id (0002), its file name, head, or base (no tables)"},
)
def migrate(c: Context, service: str, to: str = "") -> None:
    """Step the database to a revision, up or down (down may drop columns and data)."""
    needs(service, "migrate", to=to)
    url = service_database_url(service, os.environ.get("DATABASE_URL"))
    metadata = importlib.import_module(f"{service}.models").db.metadata
    with migration_target(url, metadata) as target:
        migrated = step_to(service, target, to)
    log.info("database %s", migrated)


@task(
    auto_shortflags=False,
    help={"message": "what the revision changes: its docstring and file name"},
)
def revision(c: Context, service: str, message: str = "") -> None:
    """Write the next migration from the models (none if they agree); review it."""
    needs(service, "revision", message=message)
    models = importlib.import_module(f"{service}.models")
    written = new_revision(service, models.db.metadata, message)
    if written is None:
        print(f"The {service} models and migrations agree: no revision to write")
        return
    print(f"Wrote {written.relative_to(ROOT)}: review it, then `inv {service} setup` applies it")


USERNAME_HELP = "who: the administrator, or whose failed logins to forget"


@task(
    name="create-admin",
    auto_shortflags=False,
    help={
        "username": USERNAME_HELP,
        "email": "the new administrator's email",
        "password": f"the new administrator's; else ${ADMIN_PASSWORD_VARIABLE}, else asked for",
    },
)
def create_admin(
    c: Context, service: str, username: str = "", email: str = "", password: str = ""
) -> None:
    """Create an administrator, or promote an existing user; prints no secret."""
    from users.admin import AdminRefused
    from users.admin import create_admin as create

    needs(service, "create-admin", username=username)

    def password_for_a_new_user() -> str:
        """Asked only when no user of that name is there to promote."""
        refuse_unusable_fields(username, email)
        return password or os.environ.get(ADMIN_PASSWORD_VARIABLE) or ask_password()

    launcher.setup_service(service)
    with launcher.service_context(service):
        try:
            print(create(username, email, password_for_a_new_user))
        except AdminRefused as error:
            raise Exit(f"inv {service} create-admin: {error}", code=USAGE_ERROR) from error


def refuse_unusable_fields(username: str, email: str) -> None:
    """Before a password is asked for: the username and email a new user needs,
    of the shapes registration takes (users.admin says a ValidationError in one line)."""
    from marshmallow import ValidationError

    from users.admin import AdminRefused
    from users.schemas import RegisterIn

    if not email:
        raise AdminRefused(f"there is no user {username!r} to promote; to create one, give --email")
    problems = RegisterIn().validate({"username": username, "email": email}, partial=("password",))
    if problems:
        raise ValidationError(problems)


def ask_password() -> str:
    """The new administrator's password, typed twice at the terminal, unseen."""
    from users.admin import AdminRefused

    if not sys.stdin.isatty():
        raise AdminRefused(
            f"no password: give --password or ${ADMIN_PASSWORD_VARIABLE}, "
            "or run it in a terminal to be asked"
        )
    try:
        password = getpass("Password: ")
        again = getpass("Password again: ")
    except (EOFError, KeyboardInterrupt):
        raise AdminRefused("no password given; nothing was changed") from None
    if password != again:
        raise AdminRefused("the two passwords differ; nothing was changed")
    return password


@task(auto_shortflags=False, help={"username": USERNAME_HELP})
def unthrottle(c: Context, service: str, username: str = "") -> None:
    """Forget every failed login of a username, from every address."""
    from users.domain import name_key
    from users.throttling import unthrottle as forget_failures

    needs(service, "unthrottle", username=username)
    launcher.setup_service(service)
    with launcher.service_context(service):
        forgotten = forget_failures(name_key(username))
    print(f"Forgot {forgotten} failed logins of {username}")


def needs(service: str, verb: str, **flags: str) -> None:
    """Refuses the verb, in one line, when one of these flags was not given."""
    missing = [f"--{name}" for name, value in flags.items() if not value]
    if missing:
        raise Exit(f"inv {service} {verb} needs {', '.join(missing)}", code=USAGE_ERROR)


def verbs_of(entry: ServiceEntry) -> dict[str, Task]:
    """A service's verbs by name: setup (--seed where it seeds), serve, migrate,
    revision, its own."""
    own = (create_admin, unthrottle) if entry.name == "users" else ()
    verbs = (setup_and_seed if entry.seeds else setup, serve, migrate, revision, *own)
    return {verb.name: verb for verb in verbs}


def flags_of(verb: Task) -> list[Argument]:
    """The verb's flags (its service, the one positional, aside). Read from a
    copy: reading a task's arguments uses up its help."""
    reading = copy.copy(verb)
    reading.help = dict(verb.help)
    return [argument for argument in reading.get_arguments() if not argument.positional]


class ServiceTask(Task):
    """`inv <service> ACTION [--flags]`: the verb ACTION with its flags. The
    task takes every flag of its verbs (a letter each where one is free; -h
    stays help) and refuses one the verb does not take rather than ignore it."""

    def __init__(self, entry: ServiceEntry) -> None:
        super().__init__(self.run_verb, name=entry.name, positional=["action"])
        self.service = entry.name
        self.verbs = verbs_of(entry)
        self.flags = {verb: flags_of(task) for verb, task in self.verbs.items()}
        self.every_flag = {flag.name: flag for flags in self.flags.values() for flag in flags}
        letters = {"h"}
        for flag in self.every_flag.values():
            if (letter := str(flag.name)[0]) not in letters:
                flag.names = (*flag.names, letter)
                letters.add(letter)
        self.__doc__ = f"{entry.name}: set up, serve, migrate; `inv {entry.name} -h` for all."

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        action = Argument(names=("action",), positional=True, help=", ".join(self.verbs))
        return [action, *map(checked, self.every_flag.values())]

    def run_verb(self, c: Context, action: str, **flags: Any) -> None:
        if action in HELP_WORDS:  # invoke reads `inv users --help` as the action --help
            self.print_help()
            return
        verb = self.verbs.get(action)
        if verb is None:
            raise Exit(
                f"inv {self.service}: unknown action {action!r}; "
                f"the actions are {', '.join(self.verbs)}",
                code=USAGE_ERROR,
            )
        command = f"inv {self.service} {action}"
        own = self.refuse_stray_flags(command, action, flags)
        start_logging(self.service)
        with one_line_errors(command):
            verb(c, self.service, **own)

    def refuse_stray_flags(
        self, command: str, action: str, flags: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The verb's own flags, refusing in one line any other given."""
        takes = [str(flag.name) for flag in self.flags[action]]
        given = [name for name, value in flags.items() if value != self.every_flag[name].default]
        stray = [f"--{name}" for name in given if name not in takes]
        if stray:
            taken = ", ".join(f"--{name}" for name in takes) or "no flags"
            raise Exit(f"{command} takes {taken}, not {', '.join(stray)}", code=USAGE_ERROR)
        return {name: flags[name] for name in takes}

    def print_help(self) -> None:
        """Each action, the flags it takes, then what each flag means."""
        print(f"Usage: inv {self.service} ACTION [--flags]", "", "Actions:", sep="\n")
        for name, verb in self.verbs.items():
            flags = " ".join(f"--{flag.name}" for flag in self.flags[name])
            print(f"  {name:14}{inspect.getdoc(verb)}", f"  {'':14}{flags}", sep="\n")
        print("", "Flags:", sep="\n")
        for names, meaning in ParserContext(args=self.every_flag.values()).help_tuples():
            print(f"  {names:29} {meaning}")
        print("", f"The database is $DATABASE_URL, else instance/{self.service}.db.", sep="\n")


# The shop as a whole.


@task(
    klass=ShopTask,
    auto_shortflags=False,  # -h is help, not --host
    help={
        "host": f"address to serve on (default {DEFAULT_HOST})",
        "workers": f"worker processes per service (default {DEFAULT_WORKERS})",
        "base_port": "the first service's port, the others' the next ones "
        "(default: each its own, users 5001, beers 5002, orders 5003)",
    },
)
def up(
    c: Context, host: str = DEFAULT_HOST, workers: int = DEFAULT_WORKERS, base_port: int = 0
) -> None:
    """Set up and start every service; Ctrl-C stops them."""
    launcher.stop_on_signals()
    start_logging("shop")
    if os.environ.pop("DATABASE_URL", None):
        print("inv up: DATABASE_URL is ignored; set USERS_DATABASE_URL and the like")
    ports = {
        name: base_port + offset if base_port else entry.port
        for offset, (name, entry) in enumerate(SERVICES.items())
    }
    urls = {name: f"http://{launcher.reachable_at(host)}:{port}" for name, port in ports.items()}
    database_urls = {name: os.environ.get(f"{name.upper()}_DATABASE_URL") for name in SERVICES}
    with one_line_errors("inv up"):
        # Before anything starts: another shop on these ports would answer for ours.
        launcher.check_ports_free(host, ports)
        share_a_secret_key()
        try:
            for name in SERVICES:
                launcher.setup_service(name, seed="if-empty", database_url=database_urls[name])
        except KeyboardInterrupt:  # each migration is one transaction: nothing half done
            raise Exit("inv up: stopped during set-up", code=1) from None
        servers = launcher.start_servers(host, ports, database_urls, workers)
        try:
            launcher.wait_until_all_ready(servers, urls)
            print("\nThe shop is up (Ctrl-C stops it):")
            for name, url in urls.items():
                print(f"  {name:7} {url}/   API docs: {url}/api/docs")
            # Now, not when the shop stops, also to a pipe or a file (a log, a test).
            sys.stdout.flush()
            while all(server.poll() is None for server in servers.values()):
                time.sleep(0.5)
            raise Exit("inv up: a service stopped; stopping the others", code=1)
        except KeyboardInterrupt:
            print("\nStopping…")
        finally:
            launcher.stop_servers(servers.values())


def ensure_node_tools(c: Context) -> None:
    """The JavaScript tools package.json pins (newman for the Postman collection's
    test, Redocly's CLI for the OpenAPI lint), installed when missing and npm is
    at hand."""
    current = NODE_TOOLS.exists() and NODE_TOOLS.stat().st_mtime >= NODE_LOCK.stat().st_mtime
    if not current and shutil.which("npm"):
        c.run(f"cd {ROOT} && npm ci --no-audit --no-fund", pty=False)


@task(
    klass=ShopTask,
    help={
        "args": "extra pytest arguments, e.g. '-k checkout'",
        "postgres": "run against a throwaway PostgreSQL server instead of SQLite",
    },
)
def test(c: Context, args: str = "", postgres: bool = False) -> None:
    """Run every test: service tests, then end-to-end over real HTTP."""
    ensure_node_tools(c)
    command = f"{sys.executable} -m pytest {args}"
    if not postgres:
        c.run(command, pty=False)
        return
    from tests.postgres import throwaway_postgres

    with throwaway_postgres() as url:
        print(f"PostgreSQL for the tests at {url}")
        c.run(command, env={"TEST_POSTGRES_URL": url}, pty=False)


FUZZ_CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)


@task(klass=ShopTask, help={"examples": "examples schemathesis makes per operation and phase"})
def fuzz(c: Context, examples: int = 30) -> None:
    """Fuzz each service against its own OpenAPI document (schemathesis).

    All run on temporary databases; no 5xx but documented 503s, every answer as
    documented."""
    folder = Path(tempfile.mkdtemp(prefix="shop-fuzz-"))
    ports = {name: launcher.free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    databases: dict[str, str | None] = {name: f"sqlite:///{folder / name}.db" for name in SERVICES}
    password = secrets.token_urlsafe(24)
    with one_line_errors("inv fuzz"):
        for name in SERVICES:
            launcher.setup_service(name, seed="yes", database_url=databases[name])
        with launcher.service_context("users", databases["users"]):
            from users.domain import register

            register(
                {"username": "fuzzer", "email": "fuzzer@example.com", "password": password},
                is_admin=True,
            )
        servers = launcher.start_servers(
            "127.0.0.1", ports, databases, 2, {"SECRET_KEY": "fuzz"}, folder
        )
        try:
            launcher.wait_until_all_ready(servers, urls)
            # users last: its logout revokes the token the others are fuzzed with.
            failed = [
                name
                for name in sorted(SERVICES, key=lambda name: name == "users")
                if not _fuzzed(c, urls, name, password, examples, folder)
            ]
        finally:
            launcher.stop_servers(servers.values())
    if failed:
        raise Exit(f"fuzzing found answers the documents do not allow: {', '.join(failed)}")
    print(f"fuzzed {', '.join(SERVICES)}: every answer as documented ({folder})")


def _fuzzed(
    c: Context, urls: Mapping[str, str], service: str, password: str, examples: int, folder: Path
) -> bool:
    """Whether schemathesis found every answer of the service as documented."""
    token = requests.post(
        f"{urls['users']}/api/users/login",
        json={"username": "fuzzer", "password": password},
        timeout=10,
    ).json()["token"]
    schemathesis = Path(sys.executable).parent / "st"
    done = c.run(
        f"cd {folder} && {schemathesis} run {urls[service]}/api/openapi.json "
        f"--checks {FUZZ_CHECKS} --max-examples {examples} --seed 1 "
        f"--header 'Authorization: Bearer {token}' --report junit "
        f"--report-dir {folder / 'reports' / service}",
        warn=True,
        pty=False,
    )
    return done is not None and not done.failed


@task(klass=ShopTask)
def check(c: Context) -> None:
    """Lint, type-check, and check the API documents and deployment files.

    ruff (lint and format), mypy (tests too), Redocly's lint of the OpenAPI
    documents, and the deployment files against their schemas."""
    ensure_node_tools(c)
    tools = Path(sys.executable).parent
    c.run(f"{sys.executable} -m ruff check .")
    c.run(f"{sys.executable} -m ruff format --check .")
    c.run(f"{sys.executable} -m mypy")
    c.run(f"{sys.executable} -m servicekit.apidocs users beers orders")  # OpenAPI: Redocly lint
    manifests = ROOT / "deploy" / "k8s"
    validate = f"{tools / 'kubernetes-validate'} --strict --quiet"
    # kustomization.yaml is kustomize's, not a Kubernetes object: tests/deploy reads it.
    objects = [path for path in manifests.glob("*.yaml") if path.name != "kustomization.yaml"]
    c.run(f"{validate} {' '.join(map(str, sorted(objects)))} {manifests}/examples/*.yaml")
    c.run(f"{tools / 'check-jsonschema'} --builtin-schema vendor.compose-spec compose.yaml")
    check_alerts(c)
    # The restricted Pod Security Standard, graceful stops, who may connect to whom.
    c.run(f"{sys.executable} -m pytest -q -p no:cacheprovider tests/deploy")


def check_alerts(c: Context) -> None:
    """The Prometheus configuration, and each alert shown firing and quiet
    (deploy/prometheus/alerts_test.yml), by promtool: Debian's `prometheus`."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            raise Exit("inv check: promtool is missing: apt-get install prometheus", code=1)
        print("inv check: alerts not tested: promtool is missing (apt-get install prometheus)")
        return
    alerts = ROOT / "deploy" / "prometheus"
    c.run(f"{promtool} check config {alerts / 'prometheus.yml'}")
    c.run(f"{promtool} test rules {alerts / 'alerts_test.yml'}")


@task(
    klass=ShopTask,
    help={
        "quick": "one short run at 4 connections: checks that the benchmark works",
        "duration": "seconds per measured run",
        "workers": "worker processes per service",
        "record": "also write the table to bench/RESULTS.md",
        "only": "comma-separated scenarios to run, e.g. beer_get,order_get (ceilings always run)",
        "in_process": "instead: each endpoint's CPU inside its service, without a server",
    },
)
def bench(
    c: Context,
    quick: bool = False,
    duration: int = 10,
    workers: int = 2,
    record: bool = False,
    only: str = "",
    in_process: bool = False,
) -> None:
    """Load-test every scenario with wrk; print a table.

    Each scenario is measured against a bare Flask ceiling (bench/run.py)."""
    if in_process:
        from bench.inprocess import main as in_process_main

        in_process_main()
        return
    from bench.run import SCENARIOS, Settings, main

    chosen = tuple(name for name in only.split(",") if name)
    known = [scenario.name for scenario in SCENARIOS if scenario.service in SERVICES]
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise Exit(
            f"inv bench: no scenario {', '.join(unknown)}; the scenarios are {', '.join(known)}",
            code=USAGE_ERROR,
        )
    settings = Settings(duration=duration, workers=workers, only=chosen)
    if quick:
        settings = Settings(duration=1, connections=(4,), workers=workers, warmup=0, users=16)
    with one_line_errors("inv bench"):
        main(settings, ROOT / "bench" / "RESULTS.md" if record else None)


# The shop's tasks, and a task per service the launcher knows (the verbs are
# theirs: `inv users serve`, not `inv serve`).
ns = Collection(up, test, check, fuzz, bench, *map(ServiceTask, SERVICES.values()))
