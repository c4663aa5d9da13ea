from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from loyalty_runtime.settings import ServiceSettings, refuse_placeholder_secret
from redemption.domain.fulfilment_keys import MAX_GRACE
from redemption.domain.fulfilment_urls import UrlPolicy

LOCAL_FULFILMENT_SECRET = "local-only-fulfilment-signing-secret-do-not-use"


class Settings(ServiceSettings):
    http_port: int = 8103
    consumer_group: str = "redemption"
    hold_ttl_seconds: float = Field(default=1800, gt=0, description="How long the ledger keeps an order's hold.")
    fulfilment_timeout_seconds: float = Field(
        default=120, gt=0, description="How long partners get to fulfil before the order is cancelled."
    )
    fulfilment_poll_seconds: float = Field(default=0.1, gt=0, description="How often due fulfilments are looked for.")
    fulfilment_signing_secret: str = Field(
        default=LOCAL_FULFILMENT_SECRET,
        min_length=32,
        description="Master secret from which each partner's fulfilment signing secret is derived; "
        "changing it changes every partner's secret.",
    )
    fulfilment_key_grace_seconds: float = Field(
        default=86_400,
        ge=0,
        le=MAX_GRACE.total_seconds(),
        description="After a rotation, how long a partner's previous fulfilment key goes on signing.",
    )
    fulfilment_allowed_hosts: str = Field(
        default="",
        description="Comma-separated hosts or CIDRs that fulfilment URLs may reach in production although they "
        "are internal (loopback, private, link-local...). https stays required.",
    )

    @model_validator(mode="after")
    def _refuse_local_fulfilment_secret_in_production(self) -> Settings:
        if self.environment == "production":
            refuse_placeholder_secret(
                "FULFILMENT_SIGNING_SECRET", self.fulfilment_signing_secret, LOCAL_FULFILMENT_SECRET
            )
        return self

    @model_validator(mode="after")
    def _check_allowed_hosts(self) -> Settings:
        UrlPolicy.parse(True, self.fulfilment_allowed_hosts)  # a bad entry stops the start, not a callback
        return self

    @property
    def fulfilment_urls(self) -> UrlPolicy:
        """Production refuses plain http and internal addresses; local runs and tests call anything."""
        return UrlPolicy.parse(self.environment == "production", self.fulfilment_allowed_hosts)

    @property
    def fulfilment_key_grace(self) -> timedelta:
        return timedelta(seconds=self.fulfilment_key_grace_seconds)

    @property
    def hold_ttl(self) -> timedelta:
        return timedelta(seconds=self.hold_ttl_seconds)

    @property
    def fulfilment_timeout(self) -> timedelta:
        return timedelta(seconds=self.fulfilment_timeout_seconds)
