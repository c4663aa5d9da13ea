"""Bearer tokens for members, partner staff and ops (JWT, HS256), and the FastAPI dependencies that check them.

Tokens come from the bank's identity provider in production; `python -m loyalty_runtime.auth`
mints them from the shared secret for local runs, demos and tests.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from loyalty_runtime.settings import LOCAL_JWT_SECRET

ISSUER = "loyalty-identity"
AUDIENCE = "loyalty"


class Role(StrEnum):
    MEMBER = "member"
    PARTNER = "partner"
    """A person on a partner's staff (the portal); its token names the partner in the `partner` claim."""
    OPS = "ops"


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    partner_id: str | None = None
    """Partner staff only: the one partner whose data the person may read and manage."""

    def may_act_for(self, member_id: uuid.UUID) -> bool:
        """Ops may act for any member; a member only for itself."""
        return self.role is Role.OPS or (self.role is Role.MEMBER and self.subject == str(member_id))

    def may_manage_partner(self, partner_id: str) -> bool:
        """Ops may manage any partner; partner staff only their own."""
        return self.role is Role.OPS or (self.role is Role.PARTNER and self.partner_id == partner_id)


class TokenError(Exception):
    pass


class TokenAuthority:
    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters")
        self._secret = secret

    def issue(
        self, subject: str, role: Role, ttl: timedelta = timedelta(hours=12), *, partner_id: str | None = None
    ) -> str:
        if (role is Role.PARTNER) != (partner_id is not None):
            raise ValueError("a partner staff token names its partner, and only such a token does")
        now = datetime.now(UTC)
        claims: dict[str, object] = {
            "sub": subject,
            "role": role.value,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + ttl,
        }
        if partner_id is not None:
            claims["partner"] = partner_id
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["sub", "role", "exp"]},
            )
            role = Role(claims["role"])
            partner = claims.get("partner")
            if role is Role.PARTNER and not isinstance(partner, str):
                raise TokenError("a partner staff token must name its partner in the 'partner' claim")
            return Principal(
                subject=str(claims["sub"]), role=role, partner_id=partner if role is Role.PARTNER else None
            )
        except (jwt.PyJWTError, ValueError) as error:
            raise TokenError(str(error)) from error


_bearer = HTTPBearer(auto_error=False, description="JWT issued to a member or to ops staff.")


def principal_dependency(authority: Callable[[], TokenAuthority]) -> Callable[..., Principal]:
    """A FastAPI dependency that answers 401 unless the request carries a valid bearer token."""

    def current_principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing bearer token: send 'Authorization: Bearer <token>'",
                {"WWW-Authenticate": "Bearer"},
            )
        try:
            return authority().verify(credentials.credentials)
        except TokenError as error:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, f"invalid bearer token: {error}", {"WWW-Authenticate": "Bearer"}
            ) from error

    return current_principal


def require_ops(principal: Principal) -> Principal:
    if principal.role is not Role.OPS:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this endpoint needs an ops token")
    return principal


def ops_dependency(authenticate: Callable[..., Principal]) -> Callable[..., Principal]:
    """A FastAPI dependency on top of `authenticate` that answers 403 unless the caller is ops."""

    # A default rather than `Annotated`: this module's annotations are strings, and FastAPI could not
    # resolve the local `authenticate` in one.
    def ops(caller: Principal = Depends(authenticate)) -> Principal:  # noqa: B008
        return require_ops(caller)

    return ops


def require_member_access(principal: Principal, member_id: uuid.UUID) -> None:
    if not principal.may_act_for(member_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a member may only act on its own points")


def resolve_member(caller: Principal, member_ref: str) -> uuid.UUID:
    """The member a path names (`me`: the caller's own, with a member token) if the caller may act for it."""
    if member_ref == "me":
        if caller.role is not Role.MEMBER:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "`me` needs a member token; ops name the member id")
        member_ref = caller.subject
    try:
        member_id = uuid.UUID(member_ref)
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{member_ref!r} is not a member id") from None
    require_member_access(caller, member_id)
    return member_id


def require_partner_access(principal: Principal, partner_id: str) -> Principal:
    """403 unless the caller is ops, or on the staff of this very partner."""
    if not principal.may_manage_partner(partner_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "partner staff may only read and manage their own partner")
    return principal


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(description="Mint a bearer token from JWT_SECRET (local runs and tests).")
    parser.add_argument("--role", choices=[r.value for r in Role], required=True)
    parser.add_argument("--subject", required=True, help="member id for members; a staff id for ops and partners")
    parser.add_argument("--partner", help="partner staff only: the partner id")
    parser.add_argument("--hours", type=int, default=12)
    args = parser.parse_args(argv)
    authority = TokenAuthority(os.environ.get("JWT_SECRET", LOCAL_JWT_SECRET))
    print(authority.issue(args.subject, Role(args.role), timedelta(hours=args.hours), partner_id=args.partner))
    return 0


if __name__ == "__main__":
    sys.exit(main())
