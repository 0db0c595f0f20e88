"""Who is calling. Until Keycloak lands, Nova's noauth convention: `X-Auth-Token: user:project`,
and the user `admin` is an admin. This mode exists for the embedded default only."""

from __future__ import annotations

from dataclasses import dataclass

from novaflow.errors import NovaflowError


class Unauthorized(NovaflowError):
    code = 401
    title = "unauthorized"


@dataclass(frozen=True)
class RequestContext:
    user_id: str
    project_id: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


NOAUTH_WARNING = (
    "AUTH IS OFF (noauth): any caller may claim any user and project with "
    "'X-Auth-Token: <user>:<project>'. Use it only for the embedded local stack."
)


def noauth_context(token: str | None) -> RequestContext:
    if not token:
        raise Unauthorized("The request you have made requires authentication.")
    user, sep, project = token.partition(":")
    if not sep or not user or not project:
        raise Unauthorized("noauth token must be '<user>:<project>'")
    roles = {"member", "reader"} | ({"admin"} if user == "admin" else set())
    return RequestContext(user_id=user, project_id=project, roles=frozenset(roles))
