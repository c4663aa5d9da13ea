from __future__ import annotations

from loyalty_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    http_port: int = 8103
    consumer_group: str = "redemption"
