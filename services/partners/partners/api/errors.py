"""How the errors a caller can meet become HTTP answers: one status per error class, the message as detail."""

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from contracts.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from partners.adapters.ledger_offsets import BrokerUnavailableError
from partners.domain.credentials import AuthenticationError, ForeignPartnerError, ReplayedRequestError
from partners.domain.earn import BackdatedContractError
from partners.domain.errors import PartnersError
from partners.domain.idempotency import IntakeConflictError
from partners.domain.intake import BatchRefusedError
from partners.domain.registry import (
    ContractVersionExistsError,
    InvalidContractError,
    KeyNotFoundError,
    PartnerExistsError,
    UnknownPartnerError,
)
from partners.domain.settlement import InvalidPeriodError, LedgerBehindError, PeriodNotEndedError, UnpricedPointsError
from partners.handlers.intake import ContendedIntakeError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


class RequestTooLargeError(PartnersError):
    def __init__(self) -> None:
        super().__init__(f"the body is larger than {MAX_BODY_BYTES} bytes (1 MiB); send fewer items per request")


class MalformedBodyError(PartnersError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the body is not valid JSON: {reason}; send one JSON object")


STATUS: dict[type[PartnersError], int] = {
    AuthenticationError: status.HTTP_401_UNAUTHORIZED,
    ForeignPartnerError: status.HTTP_403_FORBIDDEN,
    ReplayedRequestError: status.HTTP_409_CONFLICT,
    PartnerExistsError: status.HTTP_409_CONFLICT,
    ContractVersionExistsError: status.HTTP_409_CONFLICT,
    UnknownPartnerError: status.HTTP_404_NOT_FOUND,
    KeyNotFoundError: status.HTTP_404_NOT_FOUND,
    BackdatedContractError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    InvalidContractError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    BatchRefusedError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    IntakeConflictError: status.HTTP_409_CONFLICT,
    ContendedIntakeError: status.HTTP_503_SERVICE_UNAVAILABLE,
    RequestTooLargeError: status.HTTP_413_CONTENT_TOO_LARGE,
    MalformedBodyError: status.HTTP_400_BAD_REQUEST,
    InvalidPeriodError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    PeriodNotEndedError: status.HTTP_409_CONFLICT,
    LedgerBehindError: status.HTTP_409_CONFLICT,
    UnpricedPointsError: status.HTTP_409_CONFLICT,
    BrokerUnavailableError: status.HTTP_503_SERVICE_UNAVAILABLE,
}

SIGNATURE_CHALLENGE = f'Loyalty-HMAC-SHA256 headers="{KEY_HEADER} {TIMESTAMP_HEADER} {SIGNATURE_HEADER}"'


def status_of(error: PartnersError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return status.HTTP_400_BAD_REQUEST


def refused_items(error: BatchRefusedError, items_field: str | None) -> list[dict[str, Any]]:
    """In FastAPI's validation format, so a partner reads every refused item (422 or 409) the same way."""
    return [
        {
            "loc": ["body", *([items_field, index] if items_field else []), problem.field],
            "msg": problem.message,
            "type": type(problem).__name__,
        }
        for index, problem in error.problems
    ]


async def _answer(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, PartnersError)
    code = status_of(error)
    headers: dict[str, str] = {}
    if code == status.HTTP_401_UNAUTHORIZED:
        headers["WWW-Authenticate"] = SIGNATURE_CHALLENGE
    if isinstance(error, ContendedIntakeError):
        headers["Retry-After"] = "1"
    detail: Any = error.message
    if isinstance(error, BatchRefusedError):
        detail = refused_items(error, None)
    return JSONResponse({"detail": detail}, status_code=code, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(PartnersError, _answer)
