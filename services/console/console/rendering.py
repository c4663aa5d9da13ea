"""Jinja2 templates with gettext, rendered in the request's locale."""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from babel.support import NullTranslations
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from console import i18n

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"

_translations: contextvars.ContextVar[NullTranslations] = contextvars.ContextVar("translations")


def _gettext(message: str) -> str:
    return _translations.get(NullTranslations()).gettext(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return _translations.get(NullTranslations()).ngettext(singular, plural, n)


def gettext(message: str) -> str:
    """For Python code (flash messages, errors): translated in the current request's locale."""
    return _gettext(message)


@cache
def static_url(path: str) -> str:
    """A static file's URL with a digest of its content, so browsers may cache it for good."""
    digest = hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:12]
    return f"/static/{path}?v={digest}"


class Pages:
    """The template environment and the catalogs; `render` answers a page in the request's locale."""

    def __init__(self, catalogs: Mapping[str, NullTranslations], timezone: str) -> None:
        self.catalogs = catalogs
        self.timezone = timezone
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html", "svg"]),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
        self.env.globals.update(static=static_url, languages=i18n.LANGUAGE_NAMES)

    def use_locale(self, locale: str) -> None:
        """Called once per request, before anything is translated."""
        _translations.set(i18n.gettext_for(self.catalogs, locale))

    def formats(self, request: Request) -> i18n.Formats:
        """Numbers, money and dates as the request's person reads them (for flash messages too)."""
        return i18n.Formats(getattr(request.state, "locale", i18n.DEFAULT), self.timezone)

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        locale = getattr(request.state, "locale", i18n.DEFAULT)
        self.use_locale(locale)
        session = getattr(request.state, "session", None)
        page = self.env.get_template(template).render(
            request=request,
            session=session,
            csrf=getattr(request.state, "csrf", ""),
            locale=locale,
            lang=locale.replace("_", "-"),
            fmt=self.formats(request),
            flash=getattr(request.state, "flash", None),
            **context,
        )
        return HTMLResponse(page, status_code=status_code)

    def fragment(self, request: Request, template: str, **context: Any) -> HTMLResponse:
        """An htmx fragment: the same rendering, without the layout (the template does not extend it)."""
        return self.render(request, template, **context)
