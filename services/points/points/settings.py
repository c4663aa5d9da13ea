from __future__ import annotations

from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from loyalty_runtime.settings import ServiceSettings, refuse_placeholder_secret

LOCAL_MESSAGING_SECRET = "local-only-messaging-callback-secret-not-for-production"


class Settings(ServiceSettings):
    http_port: int = 8102
    consumer_group: str = "points"
    lot_validity_days: int = Field(default=730, ge=1, description="How long earned points stay valid.")
    expiry_interval_seconds: float = Field(default=60.0, gt=0, description="How often the expiry job runs.")
    hold_expiry_interval_seconds: float = Field(default=2.0, gt=0, description="How often expired holds are released.")
    red_packet_interval_seconds: float = Field(
        default=30.0, gt=0, description="How often what is left of red packets past their deadline goes back."
    )
    gift_daily_limit: int = Field(default=10_000, ge=0, description="Points a member may give away per UTC day.")
    exchange_hold_hours: float = Field(
        default=72.0, gt=0, le=24 * 30, description="How long an exchange's hold waits for the partner's decision."
    )
    link_code_ttl_seconds: int = Field(
        default=900, ge=60, le=86_400, description="How long a link code issued by ops or the card system works."
    )
    programme_timezone: str = Field(
        default="Asia/Shanghai",
        description="The programme's day and year (daily earnings, calendar-year tiers) are counted in this zone.",
    )
    daily_summary_interval_seconds: float = Field(
        default=300.0, gt=0, description="How often finished days' earnings are summarised (DailyEarningsSummarised)."
    )
    programme_name: str = Field(
        default="Alliance Points", min_length=1, max_length=80, description="The programme's name on share cards."
    )
    tier_review_interval_seconds: float = Field(
        default=300.0, gt=0, description="How often tiers due are reviewed, and members caught up after a new tier set."
    )
    link_code_max_wrong_attempts: int = Field(
        default=5, ge=1, le=100, description="Wrong link codes tried for an identifier before its open codes die."
    )
    adjustment_approval_threshold: int = Field(
        default=1_000,
        ge=0,
        le=10_000_000,
        description="Ops adjustments of more points than this wait for a second ops user to approve them (four eyes).",
    )
    # --- attribution and targeted messages (points/domain/attribution.py, points/domain/messages.py)
    message_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often live activities' targeted members still owed a message are messaged."
    )
    message_chunk_size: int = Field(default=500, ge=1, le=10_000, description="Members messaged per transaction.")
    message_default_channel: Literal["app", "sms", "wechat", "branch"] = Field(
        default="app", description="The channel of a member without a preference nor a channel it answered best on."
    )
    messaging_callback_key_id: str = Field(
        default="messaging", min_length=1, max_length=64, description="The key id the messaging systems sign with."
    )
    messaging_callback_secret: str = Field(
        default=LOCAL_MESSAGING_SECRET, min_length=32, description="Verifies the messaging systems' signed callbacks."
    )
    share_link_opens_per_minute: int = Field(
        default=120, ge=1, le=100_000, description="Opens of one share link kept per minute; a flood beyond is dropped."
    )
    console_url: str = Field(
        default="http://127.0.0.1:8104",
        min_length=1,
        description="The console's public address: share links' and messages' deep links point there.",
    )
    liability_close_margin_seconds: float = Field(
        default=300.0, ge=0, le=86_400,
        description="How long after a month's end its liability statement closes (is kept, never to change): longer "
        "than any ledger transaction plus clock skew, so that no transfer posted before the end is still to commit.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _real_messaging_secret(self) -> Settings:
        if self.environment == "production":
            secret = self.messaging_callback_secret
            refuse_placeholder_secret("MESSAGING_CALLBACK_SECRET", secret, LOCAL_MESSAGING_SECRET)
        return self

    @field_validator("programme_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Asia/Shanghai") from error
        return value

    @property
    def programme_zone(self) -> ZoneInfo:
        return ZoneInfo(self.programme_timezone)

    @property
    def liability_close_margin(self) -> timedelta:
        return timedelta(seconds=self.liability_close_margin_seconds)

    @property
    def lot_validity(self) -> timedelta:
        return timedelta(days=self.lot_validity_days)

    @property
    def link_code_ttl(self) -> timedelta:
        return timedelta(seconds=self.link_code_ttl_seconds)
