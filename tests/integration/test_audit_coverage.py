"""Every write an ops token can send to points, partners and redemption leaves an audit entry, whether the route
did something or refused: a route added later without audit fails here. And each service's log is append-only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import asyncpg
import httpx
import pytest

from contracts.topics import ALL_TOPICS
from loyalty_runtime import db
from loyalty_runtime.audit_http import WRITES, flat_routes
from loyalty_runtime.kafka import ensure_topics
from loyalty_runtime.service import ServiceShell
from tests.support.kafka import delete_topics
from tests.support.ledger import OPS, member_headers
from tests.support.services import partners_service, points_service, redemption_service, running

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def services(infra, _templates) -> AsyncIterator[dict[str, tuple[ServiceShell, str]]]:
    prefix = f"test-{infra.run_id}-{uuid.uuid4().hex[:6]}."
    await ensure_topics(infra.kafka, ALL_TOPICS, prefix, partitions=1)
    names = {service: f"t_{service}_{uuid.uuid4().hex[:10]}" for service in ("points", "partners", "redemption")}
    builders = {"points": points_service, "partners": partners_service, "redemption": redemption_service}
    try:
        async with AsyncExitStack() as stack:
            started = {}
            for service, name in names.items():
                await db.ensure_database(infra.admin_dsn, name, template=_templates[service])
                dsn = db.with_database(infra.admin_dsn, name)
                shell = await stack.enter_async_context(running(builders[service](infra.kafka, dsn, prefix)))
                started[service] = (shell, dsn)
            yield started
    finally:
        await delete_topics(infra.kafka, prefix)
        for name in names.values():
            await db.drop_database(infra.admin_dsn, name)


def sample(annotation: object) -> str:
    """A value of the path parameter's type, so that the request reaches its route (which may still refuse it)."""
    if annotation is uuid.UUID:
        return str(uuid.uuid4())
    if annotation is int:
        return "1"
    return "audit-probe"


def write_routes(shell: ServiceShell) -> list[tuple[str, str, str]]:
    """(method, template, a concrete path) of every write route of the app."""
    found = []
    for route in flat_routes(shell.app.routes):
        methods = (getattr(route, "methods", None) or set()) & WRITES
        template = getattr(route, "path", None)
        dependant = getattr(route, "dependant", None)
        if not methods or template is None or dependant is None:
            continue
        path = template
        for param in dependant.path_params:
            path = path.replace("{" + param.name + "}", sample(param.field_info.annotation))
            path = path.replace("{" + param.name + ":path}", sample(param.field_info.annotation))
        found += [(method, template, path) for method in sorted(methods)]
    return found


async def test_every_ops_write_route_of_the_three_services_leaves_an_audit_entry(services):
    missing = []
    walked = 0
    for service, (shell, dsn) in services.items():
        transport = httpx.ASGITransport(app=shell.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{service}") as api:
            probes = {}
            for method, template, path in write_routes(shell):
                request_id = f"probe-{uuid.uuid4().hex}"
                await api.request(method, path, json={}, headers={**OPS, "X-Request-Id": request_id})
                probes[request_id] = f"{service}: {method} {template}"
        conn = await asyncpg.connect(dsn)
        try:
            seen = {r["request_id"] for r in await conn.fetch("SELECT request_id FROM audit_log")}
        finally:
            await conn.close()
        missing += [route for request_id, route in probes.items() if request_id not in seen]
        walked += len(probes)
    assert walked > 40  # the walk found the routes (points alone has dozens)
    assert missing == []


async def test_a_member_token_leaves_no_ops_entry(services):
    shell, dsn = services["points"]
    member = uuid.uuid4()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shell.app), base_url="http://points") as api:
        headers = {**member_headers(member), "X-Request-Id": "member-probe"}
        answer = await api.post(f"/v1/members/{member}/gifts", json={}, headers=headers)
        assert answer.status_code < 500
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE request_id = 'member-probe'") == 0
    finally:
        await conn.close()


@pytest.mark.parametrize("service", ["points", "partners", "redemption"])
async def test_each_services_audit_log_refuses_update_delete_and_truncate(services, service):
    _shell, dsn = services[service]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("INSERT INTO audit_log (actor, role, action, subject) VALUES ('t', 'ops', 'test.x', 't:1')")
        for statement in ("UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
    finally:
        await conn.close()
