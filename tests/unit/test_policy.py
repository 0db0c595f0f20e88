"""The policy table: every route of the app names a rule; roles mean what Nova's defaults say."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, routing

from api.app import create_app
from api.auth import PUBLIC_PATHS, RequestContext
from api.deps import ContextDep
from api.policy import ADMIN, RULES, Guard, PerAction, allowed
from api.routers.server_actions import ACTION_RULES, ACTIONS
from novaflow.config import Settings


def routes(app: FastAPI) -> Iterator[Any]:
    iterate = getattr(routing, "iter_route_contexts", None)  # FastAPI >= 0.16x: lazy includes
    yield from (iterate(app.routes) if iterate else app.routes)


def guards(dependant: Any) -> Iterator[Guard]:
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, Guard):
            yield dependency.call
        yield from guards(dependency)


def unguarded(app: FastAPI) -> tuple[int, list[str]]:
    """How many routes need a rule, and those without one."""
    seen, missing = 0, []
    for route in routes(app):
        if route.path in PUBLIC_PATHS:
            continue
        seen += 1
        dependant = getattr(route, "dependant", None)
        if dependant is None or not list(guards(dependant)):
            missing.append(f"{sorted(route.methods or [])} {route.path}")
    return seen, missing


def test_every_route_has_a_policy_rule() -> None:
    seen, missing = unguarded(create_app(Settings()))
    assert seen > 50
    assert missing == [], "routes without a rule (add dependencies=[rule(...)]): " + str(missing)


def test_a_route_without_a_rule_is_found() -> None:
    app = create_app(Settings())
    router = APIRouter(prefix="/v2.1/os-new-thing")

    @router.get("")
    def forgot(_: ContextDep) -> dict[str, str]:
        return {}

    app.include_router(router)
    assert unguarded(app)[1] == ["['GET'] /v2.1/os-new-thing"]


def test_every_server_action_has_its_rule() -> None:
    assert isinstance(ACTION_RULES, PerAction)
    assert set(ACTION_RULES.by_action) == set(ACTIONS)


def test_an_unknown_rule_name_is_refused_when_the_route_is_declared() -> None:
    with pytest.raises(KeyError, match="no such policy rule"):
        Guard("os_compute_api:servers:indx")


def ctx(*roles: str, user: str = "u1") -> RequestContext:
    return RequestContext(user_id=user, project_id="demo", roles=frozenset(roles))


@pytest.mark.parametrize(
    ("rule", "reader", "member", "admin"),
    [
        ("os_compute_api:servers:index", True, True, True),
        ("os_compute_api:servers:show", True, True, True),
        ("os_compute_api:servers:create", False, True, True),
        ("os_compute_api:servers:delete", False, True, True),
        ("os_compute_api:servers:update", False, True, True),
        ("os_compute_api:servers:stop", False, True, True),
        ("os_compute_api:os-migrate-server:migrate", False, False, True),
        ("os_compute_api:os-migrations:index", False, False, True),
        ("os_compute_api:os-hypervisors:list", False, False, True),
        ("os_compute_api:os-admin-actions:reset_state", False, False, True),
        ("os_compute_api:os-quota-sets:update", False, False, True),
        ("os_compute_api:os-quota-sets:show", True, True, True),
        ("get_images", True, True, True),
        ("add_image", False, False, True),
        ("os_compute_api:flavors:index", True, True, True),
        ("os_compute_api:os-keypairs:create", True, True, True),
    ],
)
def test_nova_defaults(rule: str, reader: bool, member: bool, admin: bool) -> None:
    # admin implies member implies reader (Keystone's implied roles)
    assert (allowed(ctx("reader"), rule), allowed(ctx("member"), rule)) == (reader, member)
    assert allowed(ctx("admin"), rule) is admin


def test_no_role_reads_only_what_anyone_may() -> None:
    nobody = ctx()
    assert allowed(nobody, "os_compute_api:flavors:index")
    assert allowed(nobody, "os_compute_api:os-keypairs:index")
    assert not allowed(nobody, "os_compute_api:servers:index")


def test_keypairs_are_the_owners_and_any_users_for_an_admin() -> None:
    rule = "os_compute_api:os-keypairs:index"
    assert allowed(ctx("member", user="u1"), rule, owner="u1")
    assert not allowed(ctx("member", user="u1"), rule, owner="u2")
    assert allowed(ctx("admin", user="u1"), rule, owner="u2")


def test_unknown_rules_allow_nothing() -> None:
    assert not allowed(ctx("admin"), "no-such-rule")


def test_admin_only_rules_are_few_and_named() -> None:
    admin_only = {name for name, who in RULES.items() if who is ADMIN}
    assert {
        "os_compute_api:os-migrate-server:migrate",
        "os_compute_api:os-migrations:index",
        "os_compute_api:os-hypervisors:list",
        "os_compute_api:os-admin-actions:reset_state",
        "os_compute_api:os-quota-sets:update",
        "os_compute_api:os-server-diagnostics",
        "os_compute_api:os-availability-zone:detail",
    } <= admin_only
