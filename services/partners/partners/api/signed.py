"""FastAPI dependencies that authenticate a partner's signed request (or an ops bearer token)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from contracts.ids import PartnerId
from contracts.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from loyalty_runtime.auth import Principal, require_ops
from partners.api.errors import MAX_BODY_BYTES, RequestTooLargeError
from partners.domain.credentials import ApiKey, AuthenticationError, SignedRequest
from partners.handlers.authentication import PartnerAuthenticator


class NoCredentialsError(AuthenticationError):
    def __init__(self) -> None:
        super().__init__(
            "send an ops bearer token ('Authorization: Bearer <token>'), or sign the request with the "
            f"partner's API key ({KEY_HEADER}, {TIMESTAMP_HEADER}, {SIGNATURE_HEADER})"
        )


@dataclass(frozen=True)
class SignedCall:
    """A request that the partner in its path signed: who signed it, and the exact body it signed."""

    partner_id: str
    key: ApiKey
    body: bytes


async def read_body(request: Request) -> bytes:
    """The raw body, refused with 413 as soon as it exceeds the limit, whatever Content-Length claimed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise RequestTooLargeError()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RequestTooLargeError()
        chunks.append(chunk)
    return b"".join(chunks)


def signed_partner(authenticator: PartnerAuthenticator) -> Callable[..., Awaitable[SignedCall]]:
    async def signed_call(request: Request, partner_id: Annotated[PartnerId, Path()]) -> SignedCall:
        body = await read_body(request)
        signed = SignedRequest(
            key_id=request.headers.get(KEY_HEADER),
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            signature=request.headers.get(SIGNATURE_HEADER),
            method=request.method,
            path=request.url.path,
            body=body,
        )
        key = await authenticator.authenticate_as(signed, partner_id)
        return SignedCall(partner_id, key, body)

    return signed_call


_bearer = HTTPBearer(auto_error=False, description="JWT of ops staff.")


def ops_or_signed_partner(
    authenticator: PartnerAuthenticator, current_principal: Callable[..., Principal]
) -> Callable[..., Awaitable[str]]:
    """Ops with a bearer token, or the partner of the path with a signed request; returns who asked."""
    signed_call = signed_partner(authenticator)

    async def ops_or_partner(
        request: Request,
        partner_id: Annotated[PartnerId, Path()],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> str:
        if credentials is not None:
            return require_ops(current_principal(credentials)).subject
        if request.headers.get(KEY_HEADER) is None:
            raise NoCredentialsError()
        return (await signed_call(request, partner_id)).key.key_id

    return ops_or_partner
