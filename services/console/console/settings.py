"""Every knob of the console, an environment variable with a local default."""

from __future__ import annotations

from pydantic import Field, model_validator

from loyalty_runtime.settings import ServiceSettings, refuse_placeholder_secret

LOCAL_SESSION_SECRET = "local-only-console-session-secret-do-not-use"


class Settings(ServiceSettings):
    http_port: int = 8104
    public_url: str = Field(default="http://127.0.0.1:8104", description="Where people reach the console.")
    partners_url: str = "http://127.0.0.1:8101"
    points_url: str = "http://127.0.0.1:8102"
    redemption_url: str = "http://127.0.0.1:8103"
    api_timeout_seconds: float = Field(default=10.0, gt=0)
    display_timezone: str = Field(default="Asia/Shanghai", description="Dates and times are shown in this zone.")
    session_hours: int = Field(default=8, ge=1, le=24 * 7, description="A session ends this long after sign-in.")
    session_secret: str = Field(
        default=LOCAL_SESSION_SECRET, min_length=32, description="Signs the short-lived sign-in state cookie."
    )
    oidc_issuer: str = Field(default="", description="The bank's identity provider (OpenID Connect issuer URL).")
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_scopes: str = "openid profile email"
    oidc_role_claim: str = Field(default="loyalty_role", description="Claim that says member, partner or ops.")
    oidc_partner_claim: str = Field(default="loyalty_partner", description="Claim naming a staff member's partner.")
    oidc_bearer: str = Field(
        default="access_token",
        description="Which token of the provider's answer the APIs accept: access_token or id_token.",
    )

    @property
    def local_sign_in(self) -> bool:
        """Outside production a sign-in page lists the demo identities and mints their tokens."""
        return self.environment != "production"

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @model_validator(mode="after")
    def _production_needs_the_identity_provider(self) -> Settings:
        if self.environment == "production":
            refuse_placeholder_secret("SESSION_SECRET", self.session_secret, LOCAL_SESSION_SECRET)
            missing = [
                name for name in ("oidc_issuer", "oidc_client_id", "oidc_client_secret") if not getattr(self, name)
            ]
            if missing:
                raise ValueError(
                    f"{', '.join(m.upper() for m in missing)} must be set when ENVIRONMENT=production: people sign in "
                    "with the bank's identity provider (OpenID Connect)"
                )
            if not self.public_url.startswith("https://"):
                raise ValueError("PUBLIC_URL must be https:// when ENVIRONMENT=production (session cookies are Secure)")
        return self
