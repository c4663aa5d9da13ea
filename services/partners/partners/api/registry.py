"""Ops register partners and version their earn contracts; ops and the partner's staff manage its API keys."""

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import Category, PartnerId
from contracts.money import Currency
from loyalty_runtime.auth import Principal, TokenAuthority, ops_dependency, principal_dependency
from partners.api.signed import PartnerCall, ops_or_partner_staff, ops_or_signed_partner
from partners.domain.credentials import KEY_ID_PATTERN, ApiKey
from partners.domain.earn import EarnContract
from partners.domain.registry import NewCredentials
from partners.handlers import registry as handlers
from partners.handlers.authentication import PartnerAuthenticator
from partners.handlers.registry import Registry

Rate = Annotated[Decimal, Field(max_digits=10, decimal_places=4, lt=1_000_000)]
Price = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=4, lt=10_000_000_000)]


class ContractTerms(BaseModel):
    model_config = ConfigDict(extra="forbid")

    valid_from: date = Field(description="First day (UTC) of this version; it holds until the next version starts.")
    currency: Currency = Field(description="Purchases under this version must be in this currency.")
    points_per_unit: Annotated[Rate, Field(gt=0)] = Field(description="Points per one major unit (per yuan).")
    category_rates: dict[Category, Annotated[Rate, Field(ge=0)]] = Field(
        default_factory=dict, max_length=200, description="Points per major unit by category; 0 earns nothing."
    )
    issue_price_minor_per_point: Price = Field(description="Minor units the partner pays per point it issues.")
    redemption_price_minor_per_point: Price = Field(
        description="Minor units the partner is paid per point redeemed with it."
    )
    breakage_rebate_share: Annotated[Decimal, Field(ge=0, le=1, max_digits=5, decimal_places=4)] = Field(
        default=Decimal(0),
        description="Share (0 to 1, at most 4 decimals) of the issue price refunded to the partner for its "
        "points that expired unused; settled in its statement. 0 when omitted.",
    )

    def for_partner(self, partner_id: str) -> EarnContract:
        return EarnContract(partner_id=partner_id, **self.model_dump())


class Contract(ContractTerms):
    partner_id: str

    @classmethod
    def of(cls, contract: EarnContract) -> "Contract":
        return cls(
            partner_id=contract.partner_id,
            valid_from=contract.valid_from,
            currency=contract.currency,
            points_per_unit=contract.points_per_unit,
            category_rates=dict(contract.category_rates),
            issue_price_minor_per_point=contract.issue_price_minor_per_point,
            redemption_price_minor_per_point=contract.redemption_price_minor_per_point,
            breakage_rebate_share=contract.breakage_rebate_share,
        )


class NewPartner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner_id: PartnerId
    name: str = Field(min_length=1, max_length=200)
    contract: ContractTerms


class Credentials(BaseModel):
    partner_id: str
    key_id: str
    secret: str = Field(description="Shown only now; store it safely. It signs every request of this key.")

    @classmethod
    def of(cls, new: NewCredentials) -> "Credentials":
        return cls(partner_id=new.partner_id, key_id=new.key_id, secret=new.secret)


class Key(BaseModel):
    key_id: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> "Key":
        return cls(key_id=key.key_id, created_at=key.created_at, revoked_at=key.revoked_at)


class PartnerOut(BaseModel):
    partner_id: str
    name: str
    created_at: datetime
    keys: list[Key]


class PartnerSummary(BaseModel):
    partner_id: str
    name: str
    created_at: datetime
    contract: Contract | None = Field(description="The version in force today (UTC); null before the first starts.")
    active_keys: int = Field(description="Keys not revoked.")

    @classmethod
    def of(cls, overview: handlers.PartnerOverview) -> "PartnerSummary":
        partner, contract = overview.partner, overview.contract
        return cls(
            partner_id=partner.partner_id,
            name=partner.name,
            created_at=partner.created_at,
            contract=Contract.of(contract) if contract is not None else None,
            active_keys=overview.active_keys,
        )


OPS_ONLY: Mapping[int | str, dict[str, str]] = {
    401: {"description": "No valid bearer token."},
    403: {"description": "The token is not an ops token."},
}
PORTAL: Mapping[int | str, dict[str, str]] = {
    401: {"description": "No valid bearer token, and no valid signature of the partner."},
    403: {"description": "A member token, a staff token of another partner, or a key that belongs to another partner."},
    404: {"description": "No such partner."},
}
STAFF: Mapping[int | str, dict[str, str]] = {
    401: {"description": "No valid bearer token (a signed request may not manage keys)."},
    403: {"description": "A member token, or a staff token of another partner."},
}


def router(
    registry: Registry,
    authenticator: PartnerAuthenticator,
    tokens: TokenAuthority,
    master_secret: str,
    clock: Callable[[], datetime],
) -> APIRouter:
    api = APIRouter(prefix="/v1/partners", tags=["registry"])
    current_principal = principal_dependency(lambda: tokens)

    Ops = Annotated[Principal, Depends(ops_dependency(current_principal))]
    OpsOrPartner = Annotated[PartnerCall, Depends(ops_or_signed_partner(authenticator, current_principal))]
    OpsOrStaff = Annotated[PartnerCall, Depends(ops_or_partner_staff(current_principal))]
    PartnerPath = Annotated[PartnerId, Path()]

    @api.post("", status_code=status.HTTP_201_CREATED, responses={**OPS_ONLY, 409: {"description": "Exists."}})
    async def register(new: NewPartner, _ops: Ops) -> Credentials:
        """Register a partner with its first earn contract and its first API key (the secret is shown only here)."""
        made = await handlers.register_partner(
            registry, master_secret, new.partner_id, new.name, new.contract.for_partner(new.partner_id)
        )
        return Credentials.of(made)

    @api.get("", responses=OPS_ONLY)
    async def list_partners(_ops: Ops) -> list[PartnerSummary]:
        """Every partner by partner_id, with the contract version in force today and how many keys work."""
        return [PartnerSummary.of(o) for o in await handlers.list_partners(registry, clock().date())]

    @api.get("/{partner_id}", responses=PORTAL)
    async def get_partner(partner_id: PartnerPath, _caller: OpsOrPartner) -> PartnerOut:
        """The partner and its keys (never their secrets). Ops, the partner's staff, or the partner, signed."""
        partner = await handlers.get_partner(registry, partner_id)
        keys = [Key.of(k) for k in partner.keys]
        return PartnerOut(partner_id=partner.partner_id, name=partner.name, created_at=partner.created_at, keys=keys)

    @api.post(
        "/{partner_id}/contracts",
        status_code=status.HTTP_201_CREATED,
        responses={**OPS_ONLY, 404: {"description": "No such partner."}, 409: {"description": "Same start date."}},
    )
    async def add_contract(partner_id: PartnerPath, terms: ContractTerms, _ops: Ops) -> Contract:
        """A new version of the earn contract from `valid_from` (today or later, UTC) on."""
        added = await handlers.add_contract_version(registry, terms.for_partner(partner_id), clock().date())
        return Contract.of(added)

    @api.get("/{partner_id}/contracts", responses=PORTAL)
    async def list_contracts(partner_id: PartnerPath, _caller: OpsOrPartner) -> list[Contract]:
        """Every version, oldest first. Ops, the partner's staff, or the partner itself with a signed request."""
        return [Contract.of(c) for c in await handlers.list_contracts(registry, partner_id)]

    @api.post(
        "/{partner_id}/keys",
        status_code=status.HTTP_201_CREATED,
        responses={**STAFF, 404: {"description": "No such partner."}},
    )
    async def rotate_key(partner_id: PartnerPath, _caller: OpsOrStaff) -> Credentials:
        """A new key and secret (shown only here); the old keys keep working until they are revoked.

        Ops, or the partner's own staff with their bearer token.
        """
        return Credentials.of(await handlers.rotate_key(registry, master_secret, partner_id))

    @api.delete(
        "/{partner_id}/keys/{key_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses={**STAFF, 404: {"description": "The partner has no such key."}},
    )
    async def revoke_key(
        partner_id: PartnerPath, key_id: Annotated[str, Path(pattern=KEY_ID_PATTERN)], _caller: OpsOrStaff
    ) -> Response:
        """Revoke a key: requests signed with it are refused within seconds, on every replica.

        Ops, or the partner's own staff with their bearer token.
        """
        await handlers.revoke_key(registry, partner_id, key_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return api
