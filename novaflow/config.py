"""Settings, validated at start-up. Every process reads the same NOVAFLOW_* environment."""

from __future__ import annotations

import os
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STATE_DIR = Path(".state")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOVAFLOW_", extra="ignore")

    # DATABASE_URL is the conventional name; NOVAFLOW_DATABASE_URL wins when both are set.
    database_url: str = f"sqlite:///{DEFAULT_STATE_DIR / 'novaflow.db'}"
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    state_dir: Path = DEFAULT_STATE_DIR
    # Every Temporal payload is encrypted (codec/): comma-separated base64 32-byte keys, the
    # first encrypts, all decrypt (rotation). Unset: the development key in
    # STATE_DIR/payload-key, made once; every process of a stack must see the same key.
    payload_keys: str | None = None
    # The Temporal UI's origins, allowed to call the API's codec endpoint (/temporal-codec).
    temporal_ui_origins: str = "http://127.0.0.1:8233,http://localhost:8233"
    # Identity. "noauth" trusts `X-Auth-Token: user:project` and exists for the embedded default
    # (on a loopback address only, unless NOVAFLOW_ALLOW_NOAUTH_ON_NETWORK=1); "keycloak"
    # verifies the Keycloak access token each request carries (api/keycloak_auth.py).
    auth_strategy: str = "noauth"
    allow_noauth_on_network: bool = False
    # Keycloak (auth_strategy keycloak): the server as the API reaches it and the realm. Tokens
    # must be issued by keycloak_issuer (default: <keycloak_url>/realms/<realm>), carry
    # keycloak_audience in `aud` (or come from one of keycloak_allowed_clients, the `azp`,
    # comma-separated), and are checked offline against the realm's keys (cached; a token
    # naming an unknown key refreshes them, at most once per keycloak_keys_refresh_seconds).
    keycloak_url: str = "http://127.0.0.1:8180"
    keycloak_realm: str = "novaflow"
    keycloak_issuer: str | None = None
    keycloak_audience: str = "novaflow-api"
    keycloak_allowed_clients: str = ""
    keycloak_leeway_seconds: float = Field(default=10.0, ge=0, le=300)
    keycloak_keys_refresh_seconds: float = Field(default=10.0, ge=0)
    # Compute workers with auth_strategy keycloak: the confidential client whose service
    # account's token they send to the image API (client credentials).
    service_client_id: str = "novaflow-compute"
    service_client_secret: str | None = None
    # Scheduler: comma-separated names, e.g. "RamFilter,CoreFilter" / "RAMWeigher:-1.0".
    scheduler_filters: str | None = None
    scheduler_weighers: str | None = None
    # A host whose compute worker has not heartbeated for this long is "down".
    service_down_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    # How often a compute worker looks for domains of servers deleted while it was down.
    reap_seconds: float = 60.0
    max_build_attempts: int = 3
    # How long a request waits for a control-plane worker to record it: past this, the API
    # answers 503 and the request is never carried out (what a late worker recorded of it is
    # removed again).
    accept_within_seconds: float = Field(default=20.0, gt=0)
    # A host step not picked up by the host's compute worker within this long means the worker
    # is gone: a build moves on to another host, an undo leaves the domain to the host's reaper.
    host_pickup_seconds: float = Field(default=30.0, gt=0)
    # Fault injection (tests and drills: STATE_DIR/.../faults.json holds a step or fails it).
    # Off by default: a production worker never reads the file.
    fault_injection: bool = False
    # How long stop and a soft reboot wait for the guest to shut down cleanly before cutting
    # the power (Nova's shutdown_timeout and [libvirt]wait_soft_reboot_seconds).
    shutdown_timeout_seconds: float = Field(default=60.0, ge=0, le=3600)

    # Nova's resize_confirm_window: a resize or migration in VERIFY_RESIZE confirms itself
    # after this many seconds; 0 (Nova's default) waits for a person or a program.
    resize_confirm_window: float = Field(default=0.0, ge=0)
    # Nova's allow_resize_to_same_host: a resize may stay on its host (redefined there).
    allow_resize_to_same_host: bool = False

    # The API as the compute workers reach it (they download images into their hosts'
    # caches through it), and the token they send (noauth: "<user>:<project>").
    api_url: str = "http://127.0.0.1:8774"
    service_token: str = "novaflow-compute:service"
    # How often a compute worker cleans its image cache.
    image_cache_clean_seconds: float = Field(default=600.0, gt=0)
    # The largest request body the API reads (bytes; Nova's [oslo_middleware]
    # max_request_body_size): a larger one is a 413 before authentication and before it is read.
    # An image's data upload is exempt: it has image_max_bytes, below.
    max_request_body_size: int = Field(default=114688, gt=0)
    # The largest image the image service stores (bytes); a larger upload is a 413.
    image_max_bytes: int = Field(default=20 * 1024**3, gt=0)
    # A host removes a cached image no server of it uses after this many seconds (Nova's
    # remove_unused_original_minimum_age_seconds).
    image_cache_max_age_seconds: float = Field(default=86400.0, ge=0)

    @property
    def service_down(self) -> timedelta:
        """How long without a heartbeat before a host counts as down."""
        return timedelta(seconds=self.service_down_seconds)

    # Keypairs one user may hold (Nova's [quota] key_pairs); negative: no limit.
    keypairs_per_user: int = 100

    @field_validator("auth_strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in AUTH_STRATEGIES:
            raise ValueError(f"auth_strategy must be 'noauth' or 'keycloak' (got {value!r})")
        return value

    @property
    def keycloak_realm_url(self) -> str:
        return f"{self.keycloak_url.rstrip('/')}/realms/{self.keycloak_realm}"

    @property
    def keycloak_expected_issuer(self) -> str:
        return (self.keycloak_issuer or self.keycloak_realm_url).rstrip("/")

    @property
    def keycloak_clients(self) -> frozenset[str]:
        return frozenset(c.strip() for c in self.keycloak_allowed_clients.split(",") if c.strip())


AUTH_STRATEGIES = ("noauth", "keycloak")


@lru_cache
def get_settings() -> Settings:
    plain_url = os.environ.get("DATABASE_URL")
    if plain_url and "NOVAFLOW_DATABASE_URL" not in os.environ:
        return Settings(database_url=plain_url)
    return Settings()
