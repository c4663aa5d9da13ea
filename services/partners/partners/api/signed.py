"""FastAPI dependencies that authenticate a partner's signed request, or a bearer token of ops or the partner's staff.

Machine intake takes signed requests only (`signed_partner`); the portal's reads and changes also take the
bearer token of a person on the partner's staff (Role.PARTNER, for that partner only) or of ops.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from contracts.ids import PartnerId
from contracts.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from loyalty_runtime.auth import Principal, Role, require_partner_access
from partners.api.errors import MAX_BODY_BYTES, RequestTooLargeError
from partners.domain.credentials import ApiKey, AuthenticationError, SignedRequest
from partners.handlers.authentication import PartnerAuthenticator, SignatureClaim


class NoCredentialsError(AuthenticationError):
    def __init__(self) -> None:
        super().__init__(
            "send an ops bearer token or a partner staff bearer token ('Authorization: Bearer <token>'), or sign "
            f"the request with the partner's API key ({KEY_HEADER}, {TIMESTAMP_HEADER}, {SIGNATURE_HEADER})"
        )


@dataclass(frozen=True)
class SignedCall:
    """A request that the partner in its path signed: who signed it, and the exact body it signed."""

    partner_id: str
    key: ApiKey
    body: bytes
    unclaimed: SignatureClaim | None = None
    """Set when the signature is checked but not yet marked as used (`signed_partner(..., claim=False)`)."""


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


def signed_partner(authenticator: PartnerAuthenticator, *, claim: bool = True) -> Callable[..., Awaitable[SignedCall]]:
    """Without `claim`, the route must claim `SignedCall.unclaimed` itself before it answers anything but 401/403."""

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
        if claim:
            return SignedCall(partner_id, await authenticator.authenticate_as(signed, partner_id), body)
        key, unclaimed = await authenticator.verify_as(signed, partner_id)
        return SignedCall(partner_id, key, body, unclaimed)

    return signed_call


_bearer = HTTPBearer(auto_error=False, description="JWT of ops, or of the staff of the partner in the path.")


@dataclass(frozen=True)
class PartnerCall:
    """A request on the path's partner: by ops or its staff (bearer token), or signed by the partner itself."""

    partner_id: str
    caller: str
    """The token's subject, or the id of the key that signed."""
    body: bytes


class SignatureNotEnoughError(AuthenticationError):
    def __init__(self) -> None:
        super().__init__(
            "API keys are managed by the partner's staff or by ops with a bearer token ('Authorization: Bearer "
            "<token>'); a request signed with an API key may not make or revoke keys"
        )


def staff_or_ops(principal: Principal, partner_id: str) -> Principal:
    """Ops, or the staff of this very partner; 403 with the reason for anyone else."""
    if principal.role is Role.MEMBER:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this endpoint needs an ops token or a staff token of partner {partner_id!r}; "
            "a member token may not act for a partner",
        )
    try:
        return require_partner_access(principal, partner_id)
    except HTTPException as refused:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{refused.detail}: this token is for partner {principal.partner_id!r}, not {partner_id!r}",
        ) from refused


OPS_STAFF_OR_PARTNER: dict[int | str, dict[str, str]] = {
    401: {"description": "Neither a valid bearer token nor a valid signature of the partner."},
    403: {"description": "A member token, a staff token of another partner, or a key of another partner."},
}
"""The answers of `ops_or_signed_partner` when it refuses, for the routes' `responses=`."""


def ops_or_signed_partner(
    authenticator: PartnerAuthenticator, current_principal: Callable[..., Principal]
) -> Callable[..., Awaitable[PartnerCall]]:
    """Ops or the partner's staff with a bearer token, or the partner of the path with a signed request."""
    signed_call = signed_partner(authenticator)

    async def ops_or_partner(
        request: Request,
        partner_id: Annotated[PartnerId, Path()],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> PartnerCall:
        if credentials is not None:
            principal = staff_or_ops(current_principal(credentials), partner_id)
            return PartnerCall(partner_id, principal.subject, await read_body(request))
        if request.headers.get(KEY_HEADER) is None:
            raise NoCredentialsError()
        signed = await signed_call(request, partner_id)
        return PartnerCall(partner_id, signed.key.key_id, signed.body)

    return ops_or_partner


def ops_or_partner_staff(current_principal: Callable[..., Principal]) -> Callable[..., Awaitable[PartnerCall]]:
    """Ops or the partner's staff with a bearer token; a signed request is not enough (key management)."""

    # A leaked API key must not mint a key that outlives its own revocation.
    async def staff_call(
        request: Request,
        partner_id: Annotated[PartnerId, Path()],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> PartnerCall:
        if credentials is None and request.headers.get(KEY_HEADER) is not None:
            raise SignatureNotEnoughError()
        principal = staff_or_ops(current_principal(credentials), partner_id)
        return PartnerCall(partner_id, principal.subject, b"")

    return staff_call
