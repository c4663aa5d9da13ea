from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from loyalty_runtime.settings import ServiceSettings, refuse_placeholder_secret

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
        default=LOCAL_FULFILMENT_SECRET, min_length=32, description="Signs the fulfilment callbacks sent to partners."
    )

    @model_validator(mode="after")
    def _refuse_local_fulfilment_secret_in_production(self) -> Settings:
        if self.environment == "production":
            refuse_placeholder_secret(
                "FULFILMENT_SIGNING_SECRET", self.fulfilment_signing_secret, LOCAL_FULFILMENT_SECRET
            )
        return self

    @property
    def hold_ttl(self) -> timedelta:
        return timedelta(seconds=self.hold_ttl_seconds)

    @property
    def fulfilment_timeout(self) -> timedelta:
        return timedelta(seconds=self.fulfilment_timeout_seconds)
