"""Settings every service shares; each service extends them with its own knobs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:55432"
LOCAL_KAFKA = "127.0.0.1:19092"
LOCAL_JWT_SECRET = "local-only-jwt-secret-do-not-use-in-production"


def refuse_placeholder_secret(name: str, value: str, local_default: str) -> None:
    """In production a secret must be real: not the local default, not a 'replace-me' placeholder."""
    if value == local_default or "replace-me" in value.lower():
        raise ValueError(f"{name} must be set to a real secret (32+ random characters) when ENVIRONMENT=production")


class ServiceSettings(BaseSettings):
    """Every field is an environment variable of the same name in upper case."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: Literal["local", "test", "production"] = "local"
    database_url: str = Field(default="", description="Empty means the local PostgreSQL of `make up`.")
    database_pool_min: int = Field(default=2, ge=1)
    database_pool_max: int = Field(default=10, ge=1)
    kafka_bootstrap_servers: str = LOCAL_KAFKA
    kafka_topic_prefix: str = Field(default="", description="Namespace for topics; tests use their own.")
    kafka_replication_factor: int = Field(default=1, ge=1, description="Copies of each topic (3 on a real cluster).")
    kafka_min_insync_replicas: int = Field(
        default=1, ge=1, description="Replicas that must have a write before acks=all answers (2 on a real cluster)."
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    http_reuse_port: bool = Field(
        default=False,
        description="Listen with SO_REUSEPORT, so that several processes of the service share one port "
        "(the kernel spreads the connections over them); `make up PARTNERS_PROCESSES=2` runs partners so.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_grace_seconds: float = Field(default=20.0, gt=0)
    startup_timeout_seconds: float = Field(default=60.0, gt=0, description="How long to wait for Kafka at start.")
    consumer_retry_cap_seconds: float = Field(
        default=5.0, gt=0, description="Longest wait between retries of a consumer batch after a transient failure."
    )
    consumer_retry_patience_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a consumer retries a batch in place before it rewinds and reads it again.",
    )
    consumer_heartbeat_interval_ms: int = Field(
        default=500,
        ge=100,
        le=3000,
        description="How often each consumer heartbeats. A service's consumers share one group, so each one that "
        "joins at start rebalances the others, who learn of it at their next heartbeat (Kafka's default, 3 s, "
        "made a start take 3 s per consumer).",
    )
    jwt_secret: str = Field(default=LOCAL_JWT_SECRET, min_length=32, description="Verifies member and ops tokens.")

    @model_validator(mode="after")
    def _refuse_local_defaults_in_production(self) -> ServiceSettings:
        if self.environment == "production":
            if not self.database_url:
                raise ValueError("DATABASE_URL must be set when ENVIRONMENT=production")
            refuse_placeholder_secret("JWT_SECRET", self.jwt_secret, LOCAL_JWT_SECRET)
        return self

    def dsn(self, local_database: str) -> str:
        """The configured DATABASE_URL, or the service's database on the local PostgreSQL."""
        return self.database_url or f"{LOCAL_POSTGRES}/{local_database}"
