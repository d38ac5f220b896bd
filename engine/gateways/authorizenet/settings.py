"""The Authorize.Net adapter's settings, from `PAYGRID_AUTHORIZENET_*` variables.

Kept beside the adapter (not in the process-wide `Settings`) so that only a process that
configures this gateway reads them; the gateway registry builds one with `AuthorizeNetSettings()`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SANDBOX_URL = "https://apitest.authorize.net/xml/v1/request.api"
PRODUCTION_URL = "https://api.authorize.net/xml/v1/request.api"

# Authorize.Net compares a transaction with those of the last `duplicateWindow` seconds (at most
# eight hours). Every transaction carries its own invoice number, so a wide window refuses only
# a repeat of the same reference: exactly the resend that must never charge twice.
MAX_DUPLICATE_WINDOW_S = 28_800


class AuthorizeNetSettings(BaseSettings):
    """Credentials, endpoint and limits of the Authorize.Net adapter."""

    model_config = SettingsConfigDict(
        env_prefix="PAYGRID_AUTHORIZENET_", extra="ignore", frozen=True
    )

    api_login_id: str = Field(default="", max_length=25, description="The API Login ID.")
    transaction_key: SecretStr = Field(
        default=SecretStr(""), description="The Transaction Key (16 characters); never logged."
    )
    environment: Literal["sandbox", "production"] = Field(
        default="sandbox", description="Which Authorize.Net endpoint to call."
    )
    endpoint_url: str = Field(
        default="", description="Overrides the environment's endpoint (a local fake server)."
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="Longest wait for a connection to the gateway."
    )
    timeout_s: float = Field(
        default=30.0, gt=0, le=300, description="Longest wait for one call's answer, in all."
    )
    connections: int = Field(
        default=100, ge=1, le=10_000, description="Connections one process keeps to the gateway."
    )
    duplicate_window_s: int = Field(
        default=MAX_DUPLICATE_WINDOW_S,
        ge=0,
        le=MAX_DUPLICATE_WINDOW_S,
        description="The duplicateWindow sent with every transaction (0 turns the check off).",
    )
    lookup_grace_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="How long after a call its transaction may not yet be listed for lookup.",
    )
    lookup_pages: int = Field(
        default=5, ge=1, le=100, description="Pages of 1,000 transactions a lookup reads per list."
    )
    lookup_settled_days: int = Field(
        default=3,
        ge=0,
        le=31,
        description="Days of settled batches a lookup searches after the unsettled list.",
    )

    @property
    def url(self) -> str:
        """The endpoint every request is posted to."""
        if self.endpoint_url:
            return self.endpoint_url
        return PRODUCTION_URL if self.environment == "production" else SANDBOX_URL
