from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from loyalty_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    http_port: int = 8102
    consumer_group: str = "points"
    lot_validity_days: int = Field(default=730, ge=1, description="How long earned points stay valid.")
    expiry_interval_seconds: float = Field(default=60.0, gt=0, description="How often the expiry job runs.")
    hold_expiry_interval_seconds: float = Field(default=2.0, gt=0, description="How often expired holds are released.")
    gift_daily_limit: int = Field(default=10_000, ge=0, description="Points a member may give away per UTC day.")
    link_code_ttl_seconds: int = Field(
        default=900, ge=60, le=86_400, description="How long a link code issued by ops or the card system works."
    )
    programme_timezone: str = Field(
        default="Asia/Shanghai",
        description="The programme's day and year (daily earnings, calendar-year tiers) are counted in this zone.",
    )
    link_code_max_wrong_attempts: int = Field(
        default=5, ge=1, le=100, description="Wrong link codes tried for an identifier before its open codes die."
    )

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
    def lot_validity(self) -> timedelta:
        return timedelta(days=self.lot_validity_days)

    @property
    def link_code_ttl(self) -> timedelta:
        return timedelta(seconds=self.link_code_ttl_seconds)
