"""The Keycloak tier: a real Keycloak (scripts/keycloak.sh: the repo's realm, on a free port,
started once per session) and one stack whose API requires its tokens (auth_strategy
keycloak). Tokens come from python-keycloak's password grant on the realm's novaflow-cli."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from keycloak import KeycloakAdmin, KeycloakOpenID

from tests.stacks import running_stack
from workers.devstack import DEFAULT_HOSTS, Keycloak, Stack, free_port

PASSWORD = "secret"  # every user of the development realm


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keycloak]:
    server = Keycloak(tmp_path_factory.mktemp("keycloak"), port=free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kc_admin(keycloak: Keycloak) -> KeycloakAdmin:
    """The master realm's admin, working on the realm novaflow (admin REST API)."""
    return KeycloakAdmin(
        server_url=keycloak.url,
        username=keycloak.info["admin_user"],
        password=keycloak.info["admin_password"],
        realm_name=keycloak.realm,
        user_realm_name="master",
    )


@pytest.fixture(scope="module")
def kc_stack(keycloak: Keycloak, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        **keycloak.api_env(),
        # Tokens of a 1 s lifespan expire for the API within ~2 s (the expiry test waits).
        "NOVAFLOW_KEYCLOAK_LEEWAY_SECONDS": "1",
        "NOVAFLOW_KEYCLOAK_KEYS_REFRESH_SECONDS": "1",
    }
    with running_stack(tmp_path_factory.mktemp("kc-stack"), env=env, hosts=DEFAULT_HOSTS[:1]) as s:
        yield s


@pytest.fixture(scope="session")
def token_for(keycloak: Keycloak) -> Callable[..., str]:
    """An access token of a realm user (password grant on novaflow-cli), cached per user."""
    cli = KeycloakOpenID(
        server_url=keycloak.url, realm_name=keycloak.realm, client_id="novaflow-cli"
    )
    cache: dict[str, str] = {}

    def token(user: str, fresh: bool = False, client: KeycloakOpenID | None = None) -> str:
        if client is not None:
            return str(client.token(user, PASSWORD)["access_token"])
        if fresh or user not in cache:
            cache[user] = str(cli.token(user, PASSWORD)["access_token"])
        return cache[user]

    return token


@pytest.fixture(scope="module")
def api(kc_stack: Stack, token_for: Callable[..., str]) -> Iterator[Callable[..., httpx.Client]]:
    """`api("alice")`: an HTTP client of the stack's API sending alice's token."""
    clients: list[httpx.Client] = []

    def client(user: str | None = None, token: str | None = None) -> httpx.Client:
        headers = {}
        if token is None and user is not None:
            token = token_for(user)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        made = httpx.Client(base_url=kc_stack.api_url, timeout=60, headers=headers)
        clients.append(made)
        return made

    yield client
    for made in clients:
        made.close()
