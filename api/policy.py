"""Who may do what: one table, Nova's default policy (2023.1 "new defaults", project scope).

Every route names its rule (`dependencies=[rule("os_compute_api:servers:create")]`, or
`per_action(...)` for POST /servers/{id}/action, whose body names the action); a test checks
that no route of the app is without one. A caller without the role gets Nova's 403:
"Policy doesn't allow os_compute_api:servers:create to be performed."

Roles imply one another as Keystone's default implied roles do: admin ⇒ member ⇒ reader.
"Of the project" is enforced by the lookups themselves: a server, port or group of another
project is not found (404) for anyone but an admin, whatever the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from fastapi import Depends

from api.auth import RequestContext
from api.deps import ContextDep
from novaflow.errors import Forbidden


class Who(Enum):
    ANYONE = "anyone authenticated"
    OWNER = "the owner (the user; an admin: any user)"
    READER = "reader of the project"
    MEMBER = "member of the project"
    ADMIN = "admin"


ANYONE, OWNER, READER, MEMBER, ADMIN = Who

# fmt: off
RULES: dict[str, Who] = {
    # servers
    "os_compute_api:servers:index":                     READER,
    "os_compute_api:servers:detail":                    READER,
    "os_compute_api:servers:show":                      READER,
    "os_compute_api:servers:create":                    MEMBER,
    "os_compute_api:servers:update":                    MEMBER,
    "os_compute_api:servers:delete":                    MEMBER,
    "os_compute_api:os-attach-interfaces:list":         READER,
    "os_compute_api:os-instance-actions:list":          READER,
    "os_compute_api:os-instance-actions:show":          READER,
    "os_compute_api:os-server-diagnostics":             ADMIN,
    "os_compute_api:servers:show:host_status":          ADMIN,   # Nova 2.16
    "os_compute_api:servers:migrations:index":          ADMIN,   # Nova 2.23
    "os_compute_api:servers:migrations:show":           ADMIN,   # Nova 2.23
    "os_compute_api:servers:migrations:delete":         ADMIN,   # Nova 2.24
    "os_compute_api:servers:migrations:force_complete": ADMIN,   # Nova 2.22
    # server tags (Nova 2.26)
    "os_compute_api:os-server-tags:index":              READER,
    "os_compute_api:os-server-tags:show":               READER,
    "os_compute_api:os-server-tags:update":             MEMBER,
    "os_compute_api:os-server-tags:update_all":         MEMBER,
    "os_compute_api:os-server-tags:delete":             MEMBER,
    "os_compute_api:os-server-tags:delete_all":         MEMBER,
    "novaflow:os-instance-actions:workflow":            ADMIN,  # os-novaflow-servers' actions
    # server metadata
    "os_compute_api:server-metadata:index":             READER,
    "os_compute_api:server-metadata:show":              READER,
    "os_compute_api:server-metadata:create":            MEMBER,
    "os_compute_api:server-metadata:update":            MEMBER,
    "os_compute_api:server-metadata:update_all":        MEMBER,
    "os_compute_api:server-metadata:delete":            MEMBER,
    # server actions (POST /servers/{id}/action)
    "os_compute_api:os-console-output":                 MEMBER,
    "os_compute_api:servers:start":                     MEMBER,
    "os_compute_api:servers:stop":                      MEMBER,
    "os_compute_api:servers:reboot":                    MEMBER,
    "os_compute_api:servers:rebuild":                   MEMBER,
    "os_compute_api:servers:resize":                    MEMBER,
    "os_compute_api:servers:confirm_resize":            MEMBER,
    "os_compute_api:servers:revert_resize":             MEMBER,
    "os_compute_api:servers:trigger_crash_dump":        MEMBER,  # Nova 2.17
    "os_compute_api:os-pause-server:pause":             MEMBER,
    "os_compute_api:os-pause-server:unpause":           MEMBER,
    "os_compute_api:os-suspend-server:suspend":         MEMBER,
    "os_compute_api:os-suspend-server:resume":          MEMBER,
    "os_compute_api:os-lock-server:lock":               MEMBER,
    "os_compute_api:os-lock-server:unlock":             MEMBER,
    "os_compute_api:os-admin-actions:reset_state":      ADMIN,
    "os_compute_api:os-migrate-server:migrate":         ADMIN,
    # admin's views of the cloud
    "os_compute_api:os-migrations:index":               ADMIN,
    "os_compute_api:os-hypervisors:list":               ADMIN,
    "os_compute_api:os-hypervisors:list-detail":        ADMIN,
    "os_compute_api:os-hypervisors:show":               ADMIN,
    "os_compute_api:os-services:list":                  ADMIN,
    "os_compute_api:os-services:update":                ADMIN,
    "os_compute_api:os-services:delete":                ADMIN,
    "os_compute_api:os-simple-tenant-usage:list":       ADMIN,
    "os_compute_api:os-simple-tenant-usage:show":       READER,  # of the project; admin: any
    "os_compute_api:os-availability-zone:list":         ANYONE,
    "os_compute_api:os-availability-zone:detail":       ADMIN,
    # quotas and limits
    "os_compute_api:limits":                            ANYONE,
    "os_compute_api:limits:other_project":              ADMIN,   # ?tenant_id=<another>
    "os_compute_api:os-quota-sets:show":                READER,
    "os_compute_api:os-quota-sets:detail":              READER,
    "os_compute_api:os-quota-sets:defaults":            ANYONE,
    "os_compute_api:os-quota-sets:update":              ADMIN,
    # keypairs: a user's own (an admin names another user with ?user_id=)
    "os_compute_api:os-keypairs:index":                 OWNER,
    "os_compute_api:os-keypairs:show":                  OWNER,
    "os_compute_api:os-keypairs:create":                OWNER,
    "os_compute_api:os-keypairs:delete":                OWNER,
    # server groups
    "os_compute_api:os-server-groups:index":            READER,
    "os_compute_api:os-server-groups:show":             READER,
    "os_compute_api:os-server-groups:create":           MEMBER,
    "os_compute_api:os-server-groups:delete":           MEMBER,
    # networks (Nova's view) and ports (Neutron's rule names)
    "os_compute_api:os-networks:list":                  READER,
    "os_compute_api:os-networks:view":                  READER,
    "get_port":                                         READER,
    "create_port":                                      MEMBER,
    "delete_port":                                      MEMBER,
    "get_network":                                      READER,  # the network service's list
    # flavors and Nova's image proxy: any caller (Nova checks no rule to read them)
    "os_compute_api:flavors:index":                     ANYONE,
    "os_compute_api:flavors:show":                      ANYONE,
    "os_compute_api:os-flavor-extra-specs:index":       READER,  # shown in flavors (2.61)
    "os_compute_api:images:index":                      READER,
    "os_compute_api:images:show":                       READER,
    # the image service (Glance's rule names): reads for readers, writes for admins
    "get_images":                                       READER,
    "get_image":                                        READER,
    "download_image":                                   READER,
    "add_image":                                        ADMIN,
    "upload_image":                                     ADMIN,
    "delete_image":                                     ADMIN,
    # the Temporal UI's codec endpoint (api/codec_server.py): payloads hold users' secrets
    "novaflow:temporal-codec:decode":                   ADMIN,
    "novaflow:temporal-codec:encode":                   ADMIN,
}
# fmt: on

IMPLIED = {"admin": {"admin", "member", "reader"}, "member": {"member", "reader"}}


def effective_roles(ctx: RequestContext) -> set[str]:
    roles: set[str] = set()
    for role in ctx.roles:
        roles |= IMPLIED.get(role, {role})
    return roles


def allowed(ctx: RequestContext, rule: str, owner: str | None = None) -> bool:
    """May the caller do `rule` (for OWNER rules: to the keypairs of `owner`, default its
    own)? Unknown rules are refused (a misspelled rule never allows anything)."""
    who = RULES.get(rule)
    roles = effective_roles(ctx)
    if who is None:
        return False
    if "admin" in roles or who is ANYONE:
        return True
    if who is OWNER:
        return owner is None or owner == ctx.user_id
    if who is MEMBER:
        return "member" in roles
    if who is READER:
        return "reader" in roles
    return False  # ADMIN


def refusal(rule: str) -> Forbidden:
    return Forbidden(f"Policy doesn't allow {rule} to be performed.")


def enforce(ctx: RequestContext, rule: str, owner: str | None = None) -> None:
    if not allowed(ctx, rule, owner):
        raise refusal(rule)


class Guard:
    """A route's rule(s), as a FastAPI dependency. `rules`: what it declares (the table test
    reads them)."""

    def __init__(self, *rules: str) -> None:
        unknown = [r for r in rules if r not in RULES]
        if unknown or not rules:
            raise KeyError(f"no such policy rule: {unknown} (add it to api/policy.py RULES)")
        self.rules = rules

    def __call__(self, ctx: ContextDep) -> RequestContext:
        enforce(ctx, self.rules[0])
        return ctx


class PerAction(Guard):
    """POST /servers/{id}/action: the body's key names the action, and the action its rule
    (the handler enforces it once it knows the action); here only authentication."""

    def __init__(self, rules: Mapping[str, str]) -> None:
        super().__init__(*dict.fromkeys(rules.values()))
        self.by_action = dict(rules)

    def __call__(self, ctx: ContextDep) -> RequestContext:
        return ctx

    def enforce(self, ctx: RequestContext, action: str) -> None:
        enforce(ctx, self.by_action[action])


def rule(name: str) -> Any:
    """`dependencies=[rule("os_compute_api:servers:index")]` on a route."""
    return Depends(Guard(name))


def per_action(guard: PerAction) -> Any:
    return Depends(guard)
