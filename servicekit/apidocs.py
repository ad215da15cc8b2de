"""The API documentation every service serves: its OpenAPI document, made to say
what the code answers, and Swagger UI to read it. `python -m servicekit.apidocs
users beers orders` lints the documents with Redocly's CLI (`inv check`)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from apiflask import APIBlueprint, APIFlask
from flask import Response, current_app, send_from_directory
from markupsafe import escape

from .config import BaseConfig
from .errors import DatabaseUnavailable, Problem, ServiceUnavailable, ValidationFailed
from .front import body_timeout_answer
from .intake import FORM_TYPES, JsonSentAsForm, UnknownFields, UnreadableBody
from .problem_json import PROBLEM_JSON, body_of, http_error_detail, problem_body

Spec = dict[str, Any]
# A response for `@bp.doc(responses=...)`: Any, as APIFlask types those more
# narrowly than the OpenAPI response objects it takes.
ResponseDoc = Any

SPEC_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"
DOCS_ASSETS = f"{DOCS_PATH}/assets"
# Swagger UI from files served here, started by a script file too, so that the
# page's Content-Security-Policy allows nothing inline (see observability).
DOCS_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{{title}}</title>
  <link rel="icon" type="image/png" href="{DOCS_ASSETS}/favicon-32x32.png">
  <link rel="stylesheet" href="{DOCS_ASSETS}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi="{SPEC_PATH}"></div>
  <script src="{DOCS_ASSETS}/swagger-ui-bundle.js"></script>
  <script src="{DOCS_PATH}/start.js"></script>
</body>
</html>
"""
DOCS_START = """const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapi,
  domNode: root,
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
});
"""

# Relative, so that the document is right for every caller, whatever Host it
# used (APIFlask would otherwise keep the first fetcher's, per worker).
SERVERS = [{"url": "/"}]
LICENSE = {"name": "Proprietary: no licence is granted"}
BEARER_AUTH = "BearerAuth"  # the name of the bearer token's security scheme (servicekit.auth)

# The shape of an error (RFC 9457 problem details). It gives no examples of its
# own: each response shows one of its own status (problem_doc).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "description": "The status's reason phrase."},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong, for a person."},
        "errors": {
            "type": "object",
            "description": "For validation errors: every bad field and what is wrong with it.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
}
RETRY_AFTER_DOC = {
    "description": "Seconds to wait before trying again (on 429 and 503).",
    "schema": {"type": "integer"},
    "example": 1,
}
WWW_AUTHENTICATE_DOC = {
    "description": "`Bearer`: send a bearer token.",
    "schema": {"type": "string"},
    "example": "Bearer",
}
# The header each of these statuses carries, wherever an operation answers it.
HEADER_OF_STATUS = {
    "401": ("WWW-Authenticate", WWW_AUTHENTICATE_DOC),
    "429": ("Retry-After", RETRY_AFTER_DOC),
    "503": ("Retry-After", RETRY_AFTER_DOC),
}
PATH_EXAMPLES = "x-path-examples"  # operation extensions the spec processor spends
HEADER_PARAMETERS = "x-header-parameters"
EXAMPLE_NAME_WORDS = 6  # of an example's detail, to name it among others
BODY_UNREADABLE = UnreadableBody("Not JSON: unexpected end of data.")
# Every operation refuses what it does not take (servicekit.intake, .schemas).
UNKNOWN_FIELD_EXAMPLE = UnknownFields(["qty"])
UNKNOWN_FIELD_DOC = (
    "Invalid input: a query parameter the operation does not take, or a body field "
    '(named in `errors`, each "Unknown field.").'
)
SERVER_FAILED = problem_body(500, http_error_detail(500))


# Error responses, each with an example of its own status.


def problem_doc(
    description: str, example: Problem, *more_examples: Problem, **members: dict[str, Any]
) -> ResponseDoc:
    """An error response for `@bp.doc(responses=...)`: a problem, with extra members
    (name -> JSON schema) beside the usual ones, shown by the examples given."""
    schema = _with_properties(PROBLEM_SCHEMA, **members)
    media_type = {"schema": schema, **examples_of([body_of(example), *map(body_of, more_examples)])}
    return {"description": description, "content": {PROBLEM_JSON: media_type}}


def unavailable_doc(*services: str) -> ResponseDoc:
    """503: one of these other services did not answer (the service's own database
    is added to it by the spec processor)."""
    names = " or ".join(services)
    examples = [ServiceUnavailable(service, "no answer in time") for service in services]
    return problem_doc(
        f"The {names} service did not answer in time, or failed; nothing was written.",
        *examples,
        service={"type": "string", "enum": list(services)},
    )


def invalid_input_doc(field: str, message: str) -> ResponseDoc:
    """400 shown by one bad field (the description APIFlask gives every input's 400)."""
    return problem_doc("Invalid input", ValidationFailed({field: [message]}))


def examples_of(bodies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A media type's `example`, or its named `examples` when there are several."""
    if len(bodies) == 1:
        return {"example": bodies[0]}
    return {
        "examples": {
            _example_name(body): {"summary": body["detail"], "value": body} for body in bodies
        }
    }


def _example_name(body: Mapping[str, Any]) -> str:
    words = re.findall(r"[a-z0-9]+", str(body["detail"]).lower())
    return "-".join([str(body["status"]), *words[:EXAMPLE_NAME_WORDS]])


def path_examples(**examples: Any) -> dict[str, Any]:
    """`@bp.doc(extensions=...)`: an example for each path parameter named (APIFlask
    makes them from the route's converters, which take none)."""
    return {PATH_EXAMPLES: examples}


def header_parameters(*parameters: dict[str, Any]) -> dict[str, Any]:
    """`@bp.doc(extensions=...)`: request headers the view reads itself, as OpenAPI
    parameters (APIFlask documents a header only through an input schema)."""
    return {HEADER_PARAMETERS: list(parameters)}


# The app: its document's settings, its spec processor and its docs page.


def configure_api_docs(app: APIFlask, service: str, description: str) -> None:
    """Settings of the OpenAPI document, and the processor that completes it."""
    app.config["DESCRIPTION"] = description
    app.config["SERVERS"] = SERVERS
    app.config["LICENSE"] = LICENSE
    app.config["AUTO_OPERATION_ID"] = True
    # Invalid input is a 400, as is every other request the service cannot read.
    app.config["VALIDATION_ERROR_STATUS_CODE"] = 400
    app.config["VALIDATION_ERROR_DESCRIPTION"] = "Invalid input"
    # Views document their own 401 and 404, with their examples (servicekit.auth).
    app.config["AUTO_AUTH_ERROR_RESPONSE"] = False
    app.config["AUTO_404_RESPONSE"] = False
    app.config["VALIDATION_ERROR_SCHEMA"] = PROBLEM_SCHEMA
    app.config["HTTP_ERROR_SCHEMA"] = PROBLEM_SCHEMA
    app.spec_processor(spec_processor(service, app.config))


def serve_docs_page(bp: APIBlueprint) -> None:
    """Swagger UI at /api/docs (and /api/docs/, no redirect), from Swagger UI's own
    files, shipped inside the flask-swagger-ui package: no internet, no CDN."""
    swagger_ui_dist = str(files("flask_swagger_ui") / "dist")

    @bp.get(DOCS_PATH)
    @bp.get(f"{DOCS_PATH}/")
    def docs() -> Response:
        """Swagger UI for this service's OpenAPI document."""
        title = escape(f"{current_app.title}: API documentation")  # type: ignore[attr-defined]
        return Response(DOCS_PAGE.replace("{title}", title), mimetype="text/html")

    @bp.get(f"{DOCS_PATH}/start.js")
    def docs_start() -> Response:
        return Response(DOCS_START, mimetype="text/javascript")

    @bp.get(f"{DOCS_ASSETS}/<path:filename>")
    def docs_asset(filename: str) -> Response:
        return send_from_directory(swagger_ui_dist, filename, max_age=86400)


def spec_processor(service: str, config: Mapping[str, Any]) -> Callable[[Spec | str], Spec | str]:
    """Say in the OpenAPI document what the code does, where APIFlask cannot know:
    bodies are JSON or forms, errors are problem+json with examples of their own
    status, the service's own database may be down, public operations need no token,
    a body not whole in time is the front's 408 (`config`'s BODY_TIMEOUT_SECONDS).
    """
    database_down = body_of(DatabaseUnavailable(service))

    def process(spec: Spec | str) -> Spec | str:
        if isinstance(spec, str):  # only with SPEC_FORMAT yaml, which no service uses
            return spec
        body_timeout = config.get("BODY_TIMEOUT_SECONDS", BaseConfig.BODY_TIMEOUT_SECONDS)
        # A tree that shares nothing: the responses views share (servicekit.auth's)
        # are shared objects in APIFlask's document, but each operation's own here.
        document: Spec = json.loads(json.dumps(spec))
        # `/api/beers/` as `/api/beers`: the same resource (servicekit.app),
        # written as OpenAPI linters want it.
        paths = document.get("paths", {})
        document["paths"] = {path.rstrip("/") or "/": item for path, item in paths.items()}
        for path_item in document["paths"].values():
            for operation in path_item.values():
                if isinstance(operation, dict):  # not the path's own `parameters`
                    _document_operation(operation, database_down, body_timeout)
                    _summary_of_one_sentence(operation)
        return document

    return process


SUMMARY_LENGTH = 80  # what Swagger UI shows of a summary on one line
# Where a summary may end, tried in turn while it is too long: the end of the
# docstring's first sentence, of its first clause, at its first comma.
_BOUNDARIES = (".!?", ":;", ",")


def _summary_of_one_sentence(operation: dict[str, Any]) -> None:
    """The summary as the first sentence of the view's docstring, on one line
    (else its first clause), the rest in the description. APIFlask takes the
    docstring's first line for the summary, which cuts a sentence that runs
    on to the next line."""
    summary = operation.get("summary", "")
    description = operation.get("description", "")
    if not summary or (summary.endswith(".") and len(summary) <= SUMMARY_LENGTH):
        return
    if summary.endswith((".", "!", "?")):
        paragraph, later = summary, description
    else:  # cut mid-sentence: it runs on into the description's first paragraph
        first, _, later = description.partition("\n\n")
        paragraph = " ".join(f"{summary} {first}".split())
    head, rest = paragraph, ""
    for marks in _BOUNDARIES:
        head, tail = _split_at_first(paragraph, marks)
        rest = tail[:1].upper() + tail[1:]
        if len(head) <= SUMMARY_LENGTH:
            break
    operation["summary"] = f"{head[:-1]}." if head.endswith((":", ";", ",")) else head
    described = "\n\n".join(part for part in (rest, later.strip()) if part)
    if described:
        operation["description"] = described
    else:
        operation.pop("description", None)


def _split_at_first(text: str, marks: str) -> tuple[str, str]:
    """The text up to and with the first of these marks followed by a space,
    outside parentheses and `code`; and the text after it."""
    depth, in_code = 0, False
    for at, char in enumerate(text):
        if char == "`":
            in_code = not in_code
        elif not in_code and char in "()":
            depth += 1 if char == "(" else -1
        elif not in_code and depth == 0 and char in marks and text[at + 1 : at + 2] == " ":
            return text[: at + 1], text[at + 2 :]
    return text, ""


def body_timeout_doc(seconds: float) -> ResponseDoc:
    """408, as the server's front answers it (servicekit.front) to a body not
    whole within BODY_TIMEOUT_SECONDS, before the app sees the request."""
    _, headers, body = body_timeout_answer(seconds)
    return {
        "description": f"The request body did not arrive whole within {seconds:g} seconds "
        "(BODY_TIMEOUT_SECONDS); nothing was written, and the connection closes.",
        "headers": {
            "Connection": {
                "description": "`close`: the connection closes after this answer.",
                "schema": {"type": "string"},
                "example": dict(headers)["Connection"],
            }
        },
        "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA, "example": json.loads(body)}},
    }


def _document_operation(
    operation: dict[str, Any], database_down: dict[str, Any], body_timeout: float
) -> None:
    if HEADER_PARAMETERS in operation:
        operation.setdefault("parameters", []).extend(operation.pop(HEADER_PARAMETERS))
    examples = operation.pop(PATH_EXAMPLES, {})
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path" and parameter["name"] in examples:
            parameter["example"] = examples[parameter["name"]]
    operation.setdefault("security", [])  # public: said, not left to a default
    takes_body = _bodies_as_json_or_forms(operation)
    responses = operation["responses"]
    for status, response in responses.items():
        if status.startswith(("4", "5")):
            _problem_json(response)
    if "400" in responses:
        _add_examples(responses["400"], body_of(UNKNOWN_FIELD_EXAMPLE))
    else:
        responses["400"] = problem_doc(UNKNOWN_FIELD_DOC, UNKNOWN_FIELD_EXAMPLE)
    if takes_body:  # before anything else is looked at
        _add_examples(responses["400"], body_of(BODY_UNREADABLE), body_of(JsonSentAsForm()))
        responses.setdefault("408", body_timeout_doc(body_timeout))
    if "503" in responses:
        _own_database_too(responses["503"], database_down)
    responses.setdefault("default", _any_other_error(database_down, "503" not in responses))
    for status, (header, doc) in HEADER_OF_STATUS.items():
        if status in responses:
            responses[status].setdefault("headers", {}).setdefault(header, doc)


def _bodies_as_json_or_forms(operation: dict[str, Any]) -> bool:
    """Every body is JSON or a form (urlencoded or multipart), read alike; JSON
    first, as Swagger UI offers the first."""
    content = operation.get("requestBody", {}).get("content", {})
    if content:
        schema = next(iter(content.values())).get("schema", {})
        operation["requestBody"]["content"] = {
            media_type: content.get(media_type, {"schema": schema})
            for media_type in ("application/json", *FORM_TYPES)
        }
    return bool(content)


def _problem_json(response: dict[str, Any]) -> None:
    """Errors are problem+json: APIFlask's 400 (its schema a shared component) is,
    with the view's example if it gave one."""
    body = response.get("content", {})
    if "application/json" in body:
        body[PROBLEM_JSON] = {**body.get(PROBLEM_JSON, {}), **body.pop("application/json")}


def _add_examples(response: dict[str, Any], *bodies: dict[str, Any]) -> None:
    media_type = response["content"][PROBLEM_JSON]
    shown = [media_type.pop("example")] if "example" in media_type else []
    shown += [named["value"] for named in media_type.pop("examples", {}).values()]
    media_type.update(examples_of([*shown, *bodies]))


def _own_database_too(response: dict[str, Any], database_down: dict[str, Any]) -> None:
    """A 503 for another service: the service's own database may be the one down."""
    _add_examples(response, database_down)
    media_type = response["content"][PROBLEM_JSON]
    service = media_type["schema"]["properties"].get("service")
    if service is not None:
        media_type["schema"] = _with_properties(
            media_type["schema"],
            service={**service, "enum": [*service.get("enum", []), database_down["service"]]},
        )
    response["description"] += (
        f" Or this service's own database is unavailable (`{database_down['service']}`)."
    )


def _with_properties(schema: dict[str, Any], **properties: dict[str, Any]) -> dict[str, Any]:
    """A copy with these properties too: the schema may be shared with other responses."""
    return {**schema, "properties": {**schema["properties"], **properties}}


def _any_other_error(database_down: dict[str, Any], database_here: bool) -> dict[str, Any]:
    bodies = [SERVER_FAILED, database_down] if database_here else [SERVER_FAILED]
    schema = _with_properties(PROBLEM_SCHEMA, service={"type": "string"})
    response: dict[str, Any] = {
        "description": "Any other error: 405, 413, 415, 500"
        + (", or 503 when the service's own database is unavailable." if database_here else "."),
        "content": {PROBLEM_JSON: {"schema": schema, **examples_of(bodies)}},
    }
    if database_here:
        response["headers"] = {"Retry-After": RETRY_AFTER_DOC}
    return response


# The linter: `python -m servicekit.apidocs users beers orders`.

ROOT = Path(__file__).resolve().parent.parent
REDOCLY = ROOT / "node_modules" / ".bin" / "redocly"


def write_documents(services: Sequence[str], folder: Path) -> list[Path]:
    """Each service's OpenAPI document, as it serves it, in `folder`/<service>.json."""
    written = []
    for service in services:
        app = importlib.import_module(service).create_app(
            {"DATABASE_URL": "sqlite://", "SECRET_KEY": "openapi"}
        )
        document = folder / f"{service}.json"
        with app.test_client() as client:
            spec = client.get(SPEC_PATH).get_json()
        document.write_text(json.dumps(spec, indent=2, ensure_ascii=False), encoding="utf-8")
        written.append(document)
    return written


def lint(documents: Sequence[Path]) -> int:
    """Redocly's recommended rules over the documents; its exit status."""
    if not REDOCLY.exists():
        print(f"{REDOCLY} is missing: run `npm ci` in {ROOT}", file=sys.stderr)
        return 1
    # No telemetry and no update check: a lint is no reason to call anyone.
    env = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    # The shop's licence has no URL to give (it grants none): not a fault here.
    command = [
        str(REDOCLY),
        "lint",
        "--extends=recommended",
        "--skip-rule=info-license-strict",
        *map(str, documents),
    ]
    return subprocess.run(command, env=env, check=False).returncode


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m servicekit.apidocs",
        description="Write each service's OpenAPI document to a file and lint it.",
    )
    parser.add_argument("services", nargs="+", help="users, beers, orders")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="openapi-") as folder:
        return lint(write_documents(args.services, Path(folder)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
