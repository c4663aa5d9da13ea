"""The base of every error a partner or an ops user can meet; each subclass says what to do."""

from __future__ import annotations


class PartnersError(Exception):
    """An error with a message meant for the caller: what went wrong and what to do about it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ReportRefusedError(PartnersError):
    """One purchase or refund cannot be accepted; `field` names the part of it to fix."""

    field = "body"
