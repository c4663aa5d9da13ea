"""The shape of the repository that every reader relies on."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("partners", "points", "redemption")
IO_MODULES = {"asyncpg", "aiokafka", "faststream", "fastapi", "httpx", "starlette", "loyalty_runtime"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service: str):
    others = set(SERVICES) - {service}
    offenders = {
        str(path.relative_to(ROOT)): sorted(imports(path) & others)
        for path in (ROOT / "services" / service).rglob("*.py")
        if imports(path) & others
    }
    assert offenders == {}


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_rooms(service: str):
    base = ROOT / "services" / service
    for room in ("domain", "handlers", "adapters", "api"):
        assert (base / service / room / "__init__.py").exists(), f"{service} lacks {room}/"
    for file in ("settings.py", "app.py", "__main__.py"):
        assert (base / service / file).exists(), f"{service} lacks {file}"
    assert sorted((base / "migrations").glob("0001_*.sql")), f"{service} lacks its first migration"
    assert (base / "pyproject.toml").exists()


@pytest.mark.parametrize("service", SERVICES)
def test_domain_code_is_free_of_kafka_http_and_sql(service: str):
    for path in (ROOT / "services" / service / service / "domain").rglob("*.py"):
        assert imports(path) & IO_MODULES == set(), path


def test_the_console_has_the_rooms_of_a_front_and_touches_no_ledger():
    base = ROOT / "services" / "console" / "console"
    for room in ("pages", "clients", "templates", "static", "locales"):
        assert (base / room).is_dir(), f"console lacks {room}/"
    for file in ("auth.py", "app.py", "settings.py", "__main__.py"):
        assert (base / file).exists(), f"console lacks {file}"
    ledger = set(SERVICES) | {"contracts"}
    offenders = {
        str(p.relative_to(ROOT)): sorted(imports(p) & ledger) for p in base.rglob("*.py") if imports(p) & ledger
    }
    assert offenders == {}, "the console calls the services' HTTP APIs; it imports none of them"


def test_every_vendored_front_end_library_carries_its_licence():
    vendored = [p for p in ROOT.glob("services/console/console/static/vendor/*") if p.is_dir()]
    vendored += [p for p in ROOT.glob("tests/e2e/browser/vendor/*") if p.is_dir()]
    assert vendored
    for library in vendored:
        assert (library / "LICENSE").exists(), f"{library} has no LICENSE"
        assert (library / "SOURCE").exists(), f"{library} does not say where it came from"
