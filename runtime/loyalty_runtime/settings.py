"""Settings every service shares; each service extends them with its own knobs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:55432"
LOCAL_KAFKA = "127.0.0.1:19092"


class ServiceSettings(BaseSettings):
    """Every field is an environment variable of the same name in upper case."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: Literal["local", "test", "production"] = "local"
    database_url: str = Field(default="", description="Empty means the local PostgreSQL of `make up`.")
    database_pool_min: int = Field(default=2, ge=1)
    database_pool_max: int = Field(default=10, ge=1)
    kafka_bootstrap_servers: str = LOCAL_KAFKA
    kafka_topic_prefix: str = Field(default="", description="Namespace for topics; tests use their own.")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_grace_seconds: float = Field(default=20.0, gt=0)

    @model_validator(mode="after")
    def _refuse_local_defaults_in_production(self) -> ServiceSettings:
        if self.environment == "production" and not self.database_url:
            raise ValueError("DATABASE_URL must be set when ENVIRONMENT=production")
        return self

    def dsn(self, local_database: str) -> str:
        """The configured DATABASE_URL, or the service's database on the local PostgreSQL."""
        return self.database_url or f"{LOCAL_POSTGRES}/{local_database}"
