from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from loyalty_runtime.settings import ServiceSettings, refuse_placeholder_secret

LOCAL_PARTNER_KEY_SECRET = "local-only-partner-key-secret-do-not-use-in-production"


class Settings(ServiceSettings):
    http_port: int = 8101
    partner_key_secret: str = Field(
        default=LOCAL_PARTNER_KEY_SECRET,
        min_length=32,
        description="Master secret from which every partner key's secret is derived; changing it voids them all.",
    )
    credential_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=10,
        description="How long keys and contracts are cached; bounds how late a revocation bites.",
    )
    consumer_group: str = Field(
        default="partners", min_length=1, description="Kafka consumer group of the ledger-transfers consumer."
    )
    link_code_ttl_seconds: int = Field(
        default=900, ge=60, le=86_400, description="How long a link code issued to a partner's customer works."
    )
    settlement_margin_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="How long after a month's end transfers posted before it may still arrive (longer than any "
        "ledger transaction plus clock skew); a month is finalised only after it.",
    )

    contract_publish_interval_seconds: float = Field(
        default=1.0, gt=0, le=3600, description="How often earn contract versions not yet published are looked for."
    )

    webhook_dispatcher: bool = Field(
        default=True, description="Whether this process attempts due webhook deliveries (any number of them may)."
    )
    webhook_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How long the webhook dispatcher waits when nothing was due."
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=30, description="How long one webhook attempt may take, connection included."
    )
    webhook_concurrency: int = Field(default=8, ge=1, le=64, description="Webhook attempts in flight per process.")

    @property
    def link_code_ttl(self) -> timedelta:
        return timedelta(seconds=self.link_code_ttl_seconds)

    @model_validator(mode="after")
    def _refuse_local_partner_key_secret_in_production(self) -> Settings:
        if self.environment == "production":
            refuse_placeholder_secret("PARTNER_KEY_SECRET", self.partner_key_secret, LOCAL_PARTNER_KEY_SECRET)
        return self
