"""Every write request an ops token makes is in the audit log, whatever route serves it (ServiceShell installs it).

The rule, for each POST, PUT, PATCH or DELETE carrying a valid ops bearer token:

- The route's own entries come first. A route that changes state writes its entries with `audit.record` in its
  transaction (`adjustment.requested`, `member.erased`, ...): they say what it did in the domain's words. When the
  route wrote at least one and answered below 400, that is the record of the request and nothing more is added.
- Otherwise this middleware writes one generic entry after the route answered and before the answer's last byte
  leaves (so whoever reads the log after the answer finds it): action `<METHOD> <route template>`
  (`POST /v1/ops/partners/{partner_id}/keys`), subject from the first path parameter (`partner:<id>`; else an
  `*_id` of the answer or the request, else the template), `before` = what the route's GET twin (the same path,
  or for `/{id}/verb` the path of `{id}`) answered just before the write when it answers small JSON, `after` =
  the answer when small JSON and below 400, `details` = the service, the status, the path parameters, the
  request's JSON and query, and the refusal's reason for a 4xx. Secrets and members' personal data are masked
  everywhere (audit.redacted): the log is kept for good and names members by id only. Refused attempts (4xx)
  and failures (5xx) are recorded too: who tried what matters as much as what was done.
- A ledger move made by an ops request (any `post_changes` in points) also writes `ledger.posted` in its own
  transaction (audit.record_in_request), unless the route wrote its own entries; the generic entry stays.
- All of them carry the request's id (`X-Request-Id`, or one made up), so a search can join them.

A request without a valid ops token is not an ops action and passes untouched (members' own writes, partners'
signed requests).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalty_runtime import audit
from loyalty_runtime.auth import Principal, Role, TokenAuthority, TokenError

log = logging.getLogger(__name__)

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEPT = 16_384
"""Bodies (request, answer, GET twin) kept in an entry up to this many bytes; a larger one is only measured."""


class AuditMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        pool: Callable[[], asyncpg.Pool],
        authority: Callable[[], TokenAuthority],
        routes: Callable[[], list[BaseRoute]],
    ) -> None:
        self.app = app
        self.service = service
        self.pool = pool
        self.authority = authority
        self.routes = lambda: flat_routes(routes())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        principal = self._ops(scope)
        if principal is None:
            await self.app(scope, receive, send)
            return
        body, replay = await _buffered(receive)
        route, params = self._match(scope)
        before = await self._twin(scope, route, params) if route is not None and params else None
        trail = audit.RequestTrail(_request_id(scope), actor=principal.subject, role=principal.role.value)
        answer = _Answer()

        async def forward(message: Message) -> None:
            answer.see(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await self._record(scope, principal, trail, route, params, body, before, answer)
            await send(message)

        token = audit.begin_request(trail)
        try:
            await self.app(scope, replay, forward)
        except Exception as error:
            if not answer.recorded:
                answer.status, answer.error = 500, f"{type(error).__name__}: {error}"
                await self._record(scope, principal, trail, route, params, body, before, answer)
            raise
        finally:
            audit.end_request(token)

    def _ops(self, scope: Scope) -> Principal | None:
        header = _header(scope, b"authorization")
        if header is None or not header.lower().startswith("bearer "):
            return None
        try:
            principal = self.authority().verify(header[7:].strip())
        except TokenError:
            return None
        return principal if principal.role is Role.OPS else None

    def _match(self, scope: Scope) -> tuple[BaseRoute | None, dict[str, Any]]:
        for route in self.routes():
            matched, child = route.matches(scope)
            if matched is Match.FULL:
                return route, dict(child.get("path_params", {}))
        return None, {}

    async def _twin(self, scope: Scope, route: BaseRoute, params: dict[str, Any]) -> Any:
        """What the GET of the same resource answers now (the same path, else the path of its `{id}`)."""
        path = scope["path"]
        template = getattr(route, "path", "")
        candidates = [path]
        if not template.endswith("}") and re.search(r"\}/[^/{}]+$", template):
            candidates.append(path.rsplit("/", 1)[0])
        for candidate in candidates:
            twin = {**scope, "method": "GET", "path": candidate, "raw_path": candidate.encode(), "query_string": b""}
            twin["headers"] = [(k, v) for k, v in scope["headers"] if k in (b"authorization", b"host")]
            if any(r.matches(twin)[0] is Match.FULL for r in self.routes()):
                return await self._get(twin)
        return None

    async def _get(self, twin: Scope) -> Any:
        answer = _Answer()

        async def nothing() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def keep(message: Message) -> None:
            answer.see(message)

        try:
            await self.app(twin, nothing, keep)
        except Exception:  # a read that fails leaves `before` unknown, never the write undone
            log.warning("audit: the GET twin failed", extra={"path": twin["path"]}, exc_info=True)
            return None
        return answer.json() if answer.status == 200 else None

    async def _record(
        self, scope: Scope, principal: Principal, trail: audit.RequestTrail, route: BaseRoute | None,
        params: dict[str, Any], body: bytes, before: Any, answer: _Answer,
    ) -> None:  # fmt: skip
        answer.recorded = True
        if trail.recorded and answer.status < 400:
            return  # the route's own entries say what it did
        template = getattr(route, "path", scope["path"])
        request = _json_or_size(body)
        reply = answer.json()
        details: dict[str, Any] = {"service": self.service, "status": answer.status}
        if params:
            details["path_params"] = audit.redacted({k: str(v) for k, v in params.items()})
        if scope.get("query_string"):
            details["query"] = audit.redacted(dict(parse_qsl(scope["query_string"].decode(errors="replace"))))
        if request is not None:
            details["request"] = request
        if answer.status >= 400:
            details["refusal"] = reply.get("detail") if isinstance(reply, dict) else answer.error
        entry = audit.AuditEntry(
            actor=principal.subject, role=principal.role.value, action=f"{scope['method']} {template}",
            subject=subject_of(params, reply, request, template),
            before=_mapping(before), after=_mapping(reply) if answer.status < 400 else None,
            request_id=trail.request_id, details=details,
        )  # fmt: skip
        try:
            async with self.pool().acquire() as conn:
                await audit.record(conn, entry)
        except Exception:  # the action happened already: say loudly that its entry is missing
            log.exception("audit: could not record an ops request", extra={"action": entry.action})


def flat_routes(routes: list[BaseRoute]) -> list[Any]:
    """Every route, those of included routers too (FastAPI 0.16x keeps an included router as one lazy route)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # an older FastAPI: included routes are plain routes of the app
        return list(routes)
    return list(iter_route_contexts(routes))


class _Answer:
    """The status and (the start of) the body of an answer, as it passes."""

    def __init__(self) -> None:
        self.status = 0
        self.body = bytearray()
        self.size = 0
        self.json_type = False
        self.error: str | None = None
        self.recorded = False

    def see(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            self.json_type = content_type.startswith(b"application/json")
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.size <= MAX_KEPT:
                self.body += chunk

    def json(self) -> Any:
        if not self.json_type or self.size > MAX_KEPT or not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def subject_of(params: dict[str, Any], reply: Any, request: Any, template: str) -> str:
    """`<kind>:<id>` of what the request acted on: its first path parameter, else an `*_id` it answered or sent."""
    named = [(name, value) for name, value in params.items() if audit.redacted({name: value})[name] == value]
    if named:  # the first that is not personal data (an identifier names a person: the log keeps ids only)
        name, value = named[0]
        return f"{_kind(name, template)}:{value}"
    for source in (reply, request):
        if isinstance(source, dict):
            for key, value in audit.redacted(source).items():
                if key.endswith("_id") and isinstance(value, str | int) and not str(value).startswith("["):
                    return f"{key[:-3]}:{value}"
    return template


def _kind(name: str, template: str) -> str:
    """`partner_id` -> `partner`; else the path segment before the parameter, singular (`dead-letters` -> ...)."""
    if name.endswith("_id"):
        return name[:-3]
    found = re.search(r"/([^/{}]+)/\{" + re.escape(name) + r"(:[^}]*)?\}", template)
    segment = found.group(1) if found else name
    return segment[:-1] if segment.endswith("s") else segment


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The request's whole body, and a `receive` that hands it to the app again."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return body, replay


def _json_or_size(body: bytes) -> Any:
    if not body:
        return None
    if len(body) > MAX_KEPT:
        return {"bytes": len(body)}
    try:
        return audit.redacted(json.loads(body))
    except ValueError:
        return {"bytes": len(body)}


def _mapping(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return value if isinstance(value, dict) else {"items": value}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _request_id(scope: Scope) -> str:
    given = _header(scope, b"x-request-id")
    return given[:100] if given else uuid.uuid4().hex
