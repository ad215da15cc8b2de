"""Log lines: each names its service and the request it belongs to, in one
time format, as text or as one JSON object a line (LOG_FORMAT).
Never imports prometheus_client (as servicekit.metrics does): the server's
master logs before it sets PROMETHEUS_MULTIPROC_DIR, which that import reads.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

from flask import has_request_context, request
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from .db import first_line

# Where a request's id is kept: in its WSGI environ.
REQUEST_ID_KEY = "servicekit.request_id"
# Where a traced request's trace and span ids are kept (servicekit.tracing), beside it.
TRACE_IDS_KEY = "servicekit.trace_ids"
# A traced request's id is followed by ` trace_id=... span_id=...` (%(trace_fields)s).
_TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(service)s %(name)s [%(request_id)s%(trace_fields)s] %(message)s"
)
# The same, one JSON object a line; an access line adds method, path, status
# and duration_ms.
_JSON_FIELDS = "%(asctime)s %(levelname)s %(service)s %(request_id)s %(name)s %(message)s"
_JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}
LOG_FORMATS = ("text", "json")
# What would break a text log line or disguise it, written as its escape
# (\x0a, \u2028): C0 and C1 controls (NEL, U+0085, among them), DEL, the
# Unicode line and paragraph separators, and the bidirectional controls.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def escaped(text: str) -> str:
    """`text` with every character that could break or disguise a log line escaped."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    if has_request_context():
        request_id: str | None = request.environ.get(REQUEST_ID_KEY)
        return request_id
    return None


class _RequestContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        trace_ids = request.environ.get(TRACE_IDS_KEY) if has_request_context() else None
        record.trace_fields = ""
        if trace_ids:  # fields of their own in JSON
            record.trace_id, record.span_id = trace_ids
            record.trace_fields = f" trace_id={trace_ids[0]} span_id={trace_ids[1]}"
        if not hasattr(record, "service"):  # else named by the caller (inv up: each)
            record.service = self.service
        return True


class _DroppedConnectionsInOneLine(logging.Filter):
    """SQLAlchemy's pool logs a connection it could not reset or close (the
    database restarted under it) as an error with a traceback, then drops it
    and makes a new one when next needed, which is all there is to do: a
    warning line with the reason, as for any other database failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and record.name.startswith("sqlalchemy.pool"):
            record.msg = f"{record.getMessage()}: {first_line(error)}"
            record.args, record.exc_info, record.exc_text = None, None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class _TextFormatter(logging.Formatter):
    """One line an event, whatever its message holds (a traceback, which
    follows the line, keeps its own lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escaped(super().formatMessage(record))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(service: str, level: str, log_format: str = "text") -> None:
    """One stderr handler on the root logger whose lines name the service and
    the request id, as text or as JSON (`log_format`, one of LOG_FORMATS)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "servicekit", False):
            return
    handler = _StderrHandler()
    handler.servicekit = True  # type: ignore[attr-defined]
    handler.addFilter(_RequestContextFilter(service))
    handler.addFilter(_DroppedConnectionsInOneLine())
    handler.setFormatter(_formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Alembic's INFO is each migration's chatter: the launcher says the outcome.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    # SQLAlchemy's DEBUG is every statement and row: too much even then.
    logging.getLogger("sqlalchemy").setLevel(max(logging.WARNING, root.level))


def _formatter(log_format: str) -> logging.Formatter:
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    formatter: logging.Formatter
    if log_format == "json":
        formatter = JsonFormatter(
            _JSON_FIELDS,
            rename_fields=_JSON_NAMES,
            json_ensure_ascii=False,
            reserved_attrs=[*RESERVED_ATTRS, "trace_fields"],  # the text format's alone
        )
    else:
        formatter = _TextFormatter(_TEXT_FORMAT)
    # One time format everywhere: ISO 8601 in UTC, to the millisecond.
    formatter.converter = time.gmtime
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
    formatter.default_msec_format = "%s.%03dZ"
    return formatter
