"""Idempotency keys for orders' writes (draft-ietf-httpapi-idempotency-key-header):
a client that lost an answer sends the same request with the same key again,
and gets the first answer, byte for byte, with nothing run twice.

`idempotent` wraps a view. A key is claimed in the orders database, in a
transaction of its own committed before the view runs, where a unique
constraint decides between requests racing with one key; the answer is kept
for IDEMPOTENCY_TTL_SECONDS.
"""

from __future__ import annotations

import hashlib
import re
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from http import HTTPStatus
from typing import Any

import orjson
from flask import Response, current_app, request
from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from servicekit.auth import caller
from servicekit.db import Query, read, utcnow, writing
from servicekit.errors import Problem, ValidationFailed
from servicekit.intake import refuse_a_body_it_does_not_take
from servicekit.problem_json import render_problem

from .metrics import orders_metrics
from .models import IdempotencyKey, db

HEADER = "Idempotency-Key"
VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")
REPLAYED_HEADER = "Idempotent-Replayed"
STALE_SECONDS = 60  # a claim unanswered this long: its request died, another may take it
NOT_KEPT = frozenset({401, 429, 503})  # the client may retry these with the same key
# Expired keys are swept by each worker at most this often, this many at a
# time: the table stays small, and few claims wait for a sweep.
SWEEP_SECONDS = 60
SWEEP_BATCH = 1000
# When each worker's next sweep of an orders database is due (time.monotonic).
_next_sweep: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


class KeyReused(Problem):
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self) -> None:
        super().__init__(
            f"This {HEADER} was used for a different request; use a new key for this one."
        )


class KeyInUse(Problem):
    status = HTTPStatus.CONFLICT

    def __init__(self) -> None:
        super().__init__(
            f"The first request with this {HEADER} is still running; "
            "try again when it has answered."
        )


@dataclass(frozen=True)
class Claim:
    """A request's claim on its key: a key belongs to the caller, the method and
    the path; the fingerprint tells one request from another with that key."""

    user_id: int
    method: str
    path: str
    key: str
    fingerprint: str

    @property
    def where(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "method": self.method, "path": self.path, "key": self.key}


KEPT = Query(
    select(
        IdempotencyKey.id,
        IdempotencyKey.fingerprint,
        IdempotencyKey.status,
        IdempotencyKey.content_type,
        IdempotencyKey.body,
        IdempotencyKey.time_created,
    ).where(
        IdempotencyKey.user_id == bindparam("user_id"),
        IdempotencyKey.method == bindparam("method"),
        IdempotencyKey.path == bindparam("path"),
        IdempotencyKey.key == bindparam("key"),
    )
)
CLAIM = insert(IdempotencyKey).returning(IdempotencyKey.id)
FORGET_BEFORE = delete(IdempotencyKey).where(
    IdempotencyKey.id.in_(
        select(IdempotencyKey.id)
        .where(IdempotencyKey.time_created < bindparam("cutoff"))
        .limit(bindparam("batch"))
    )
)
RELEASE = delete(IdempotencyKey).where(IdempotencyKey.id == bindparam("claim_id"))
FORGET_EXPIRED = delete(IdempotencyKey).where(
    IdempotencyKey.id == bindparam("claim_id"),
    IdempotencyKey.time_created == bindparam("claimed_at"),
)
TAKE_OVER = (
    update(IdempotencyKey)
    .where(
        IdempotencyKey.id == bindparam("claim_id"),
        IdempotencyKey.time_created == bindparam("claimed_at"),
    )
    .values(time_created=bindparam("now"), fingerprint=bindparam("new_fingerprint"))
)
KEEP = (
    update(IdempotencyKey)
    .where(IdempotencyKey.id == bindparam("claim_id"))
    .values(
        status=bindparam("answer_status"),
        content_type=bindparam("answer_type"),
        body=bindparam("answer_body"),
    )
)


def idempotent(
    fingerprint: Callable[..., Any],
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Run a view that takes a token once per Idempotency-Key, replaying its
    kept answer to every later request with the key.

    fingerprint(**the view's arguments) gives the fields that identify the
    request (as the endpoint reads them, after validation). It runs before the
    key is claimed, so it may refuse the input too (raise a Problem): a refused
    request leaves the key free for the corrected one.
    """

    def decorator(view: Callable[..., Response]) -> Callable[..., Response]:
        @wraps(view)
        def once(*args: Any, **kwargs: Any) -> Any:
            # One string, on the hot path of adds: read here, not through a schema.
            key = request.headers.get(HEADER)
            if key is None:
                return view(*args, **kwargs)
            if not VALID_KEY.fullmatch(key):
                raise ValidationFailed({HEADER: ["1 to 255 printable ASCII characters."]})
            # Input refused is answered before the key is claimed, so that the
            # corrected request may take the same key.
            refuse_a_body_it_does_not_take()
            identity = orjson.dumps(fingerprint(**kwargs), option=orjson.OPT_SORT_KEYS)
            claim = Claim(
                caller().id,
                request.method,
                resource_path(request.path),
                key,
                hashlib.sha256(identity).hexdigest(),
            )
            claim_id, kept = _claim(claim)
            if kept is not None:
                orders_metrics().replays.inc()
                return kept
            return _run_and_keep(claim_id, lambda: view(*args, **kwargs))

        return once

    return decorator


def resource_path(path: str) -> str:
    """The path a key belongs to: the path itself (each SKU's line its own),
    with or without its trailing slash, which name one resource."""
    return path.rstrip("/") or "/"


def _claim(claim: Claim) -> tuple[int, Response | None]:
    """Claim the key: its id, and the kept answer if there is one to replay.
    Raises 422 for the same key with another request, 409 while it runs."""
    now = utcnow()
    expired_before = now - timedelta(seconds=current_app.config["IDEMPOTENCY_TTL_SECONDS"])
    _sweep_now_and_then(expired_before)
    row = {**claim.where, "fingerprint": claim.fingerprint, "time_created": now}
    for _ in range(3):  # claimed, or seen, within a few rounds of racing
        try:
            with writing(db.engine) as connection:
                return connection.execute(CLAIM, row).scalar_one(), None
        except IntegrityError:
            pass  # the key is taken: look at it
        found = read(db.engine, KEPT, claim.where)
        if not found:
            continue  # released meanwhile: claim it again
        kept = found[0]
        if kept.time_created < expired_before:
            _forget(kept)  # its time is up, swept or not: claim it again
            continue
        if kept.fingerprint != claim.fingerprint:
            raise KeyReused()
        if kept.status is not None:
            return kept.id, _replay(kept)
        if not _stale(kept.time_created, now) or not _take_over(kept, claim, now):
            raise KeyInUse()
        return kept.id, None
    raise KeyInUse()


def _sweep_now_and_then(expired_before: datetime) -> None:
    """Delete up to SWEEP_BATCH expired keys, if this worker has not done so
    in the last SWEEP_SECONDS (a claim finds an expired key expired, swept
    or not)."""
    due = _next_sweep.get(db.engine, 0.0)
    if time.monotonic() < due:
        return
    _next_sweep[db.engine] = time.monotonic() + SWEEP_SECONDS
    with writing(db.engine) as connection:
        connection.execute(FORGET_BEFORE, {"cutoff": expired_before, "batch": SWEEP_BATCH})


def _forget(kept: Any) -> None:
    """Delete an expired key, unless another request has claimed it anew."""
    with writing(db.engine) as connection:
        connection.execute(FORGET_EXPIRED, {"claim_id": kept.id, "claimed_at": kept.time_created})


def _stale(claimed_at: datetime, now: datetime) -> bool:
    return now - claimed_at > timedelta(seconds=STALE_SECONDS)


def _take_over(kept: Any, claim: Claim, now: datetime) -> bool:
    """A claim whose request never finished: ours now, unless another took it."""
    with writing(db.engine) as connection:
        taken = connection.execute(
            TAKE_OVER,
            {
                "claim_id": kept.id,
                "claimed_at": kept.time_created,
                "now": now,
                "new_fingerprint": claim.fingerprint,
            },
        )
        return bool(taken.rowcount)


def _run_and_keep(claim_id: int, run: Callable[[], Response]) -> Response:
    """The view's answer, kept for the claim; unless the client may retry it
    (NOT_KEPT, or a 500): then the key is released."""
    try:
        answer = run()
    except Problem as problem:
        answer = render_problem(problem)
    except BaseException:
        _release(claim_id)  # a 500: the client may try again
        raise
    if answer.status_code in NOT_KEPT:
        _release(claim_id)
    else:
        with writing(db.engine) as connection:
            connection.execute(
                KEEP,
                {
                    "claim_id": claim_id,
                    "answer_status": answer.status_code,
                    "answer_type": answer.headers.get("Content-Type"),
                    "answer_body": answer.get_data(),
                },
            )
    return answer


def _release(claim_id: int) -> None:
    with writing(db.engine) as connection:
        connection.execute(RELEASE, {"claim_id": claim_id})


def _replay(kept: Any) -> Response:
    replay = Response(kept.body, status=kept.status, headers={REPLAYED_HEADER: "true"})
    if kept.content_type:
        replay.headers["Content-Type"] = kept.content_type
    else:
        replay.headers.pop("Content-Type", None)
    return replay
