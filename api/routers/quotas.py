"""/v2.1/limits and /v2.1/os-quota-sets/{project}: quotas and what is used of them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from api.deps import ContextDep, DbDep, SessionDep
from api.microversion import current
from api.policy import enforce, refusal, rule
from api.schemas import QuotaSetBody
from novaflow import quota, server_metadata

router = APIRouter(prefix="/v2.1", tags=["quotas"])


@router.get("/limits", dependencies=[rule("os_compute_api:limits")])
def limits(
    request: Request, session: SessionDep, ctx: ContextDep, tenant_id: str | None = None
) -> dict[str, Any]:
    if tenant_id and tenant_id != ctx.project_id:
        enforce(ctx, "os_compute_api:limits:other_project")  # Nova's: a 403, not our own
    project = tenant_id or ctx.project_id
    hard = quota.get_limits(session, project)
    used = quota.get_usage(session, project) | quota.group_usage(session, project)
    absolute = {
        "maxTotalInstances": hard["instances"],
        "maxTotalCores": hard["cores"],
        "maxTotalRAMSize": hard["ram"],
        "maxTotalFloatingIps": hard["floating_ips"],
        "maxServerMeta": server_metadata.MAX_ITEMS,
        "maxImageMeta": server_metadata.MAX_ITEMS,
        "maxPersonality": UNSUPPORTED,
        "maxPersonalitySize": UNSUPPORTED,
        "maxSecurityGroups": UNSUPPORTED,
        "maxSecurityGroupRules": UNSUPPORTED,
        "maxServerGroups": hard["server_groups"],
        "maxServerGroupMembers": hard["server_group_members"],
        "maxTotalKeypairs": request.app.state.settings.keypairs_per_user,
        "totalInstancesUsed": used["instances"],
        "totalCoresUsed": used["cores"],
        "totalRAMUsed": used["ram"],
        "totalFloatingIpsUsed": used["floating_ips"],
        "totalServerGroupsUsed": used["server_groups"],
        "totalSecurityGroupsUsed": 0,
    }
    version = current.get()
    for since, names in DROPPED_LIMITS:
        if version >= since:
            for name in names:
                del absolute[name]
    return {"limits": {"rate": [], "absolute": absolute}}


# What Nova's limits stopped showing, and when: the network proxies' (2.36), the image
# metadata proxy's (2.39), personality files' (2.57).
DROPPED_LIMITS = (
    ((2, 36), ("maxSecurityGroups", "maxSecurityGroupRules", "maxTotalFloatingIps",
               "totalFloatingIpsUsed", "totalSecurityGroupsUsed")),
    ((2, 39), ("maxImageMeta",)),
    ((2, 57), ("maxPersonality", "maxPersonalitySize")),
)  # fmt: skip
# What Nova's quota sets stopped showing (and taking), and when.
DROPPED_QUOTAS = (
    ((2, 36), ("fixed_ips", "floating_ips", "security_groups", "security_group_rules")),
    ((2, 57), ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")),
)


# Nova 2.1's limits and quota sets name resources novaflow has no quota for (personality files,
# security groups, fixed IPs): shown as unlimited, never enforced.
UNSUPPORTED = quota.UNLIMITED
UNSUPPORTED_QUOTAS = (
    "fixed_ips",
    "security_groups",
    "security_group_rules",
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
)
# Resources novaflow limits that Nova's quota sets have not: only in os-novaflow-quota-sets.
EXTENSION_QUOTAS = ("ports",)


def _quota_set(
    request: Request,
    project_id: str | None,
    hard: dict[str, int],
    used: dict[str, int] | None,
    names: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """A quota set as Nova shows it at the negotiated version (`id` unless None, as in PUT's
    answer); or, with `names`, those resources only."""
    limits = dict(hard)
    if names is None:
        names = tuple(n for n in quota.LIMITED if n not in EXTENSION_QUOTAS) + UNSUPPORTED_QUOTAS
        limits |= dict.fromkeys(UNSUPPORTED_QUOTAS, UNSUPPORTED)
        limits["metadata_items"] = server_metadata.MAX_ITEMS
        limits["key_pairs"] = request.app.state.settings.keypairs_per_user
        names += ("metadata_items", "key_pairs")
        version = current.get()
        dropped = {n for since, gone in DROPPED_QUOTAS if version >= since for n in gone}
        names = tuple(n for n in names if n not in dropped)
    body: dict[str, Any] = {} if project_id is None else {"id": project_id}
    for name in names:
        body[name] = (
            limits[name]
            if used is None
            else {"limit": limits[name], "in_use": used.get(name, 0), "reserved": 0}
        )
    return {"quota_set": body}


@router.get("/os-quota-sets/{project_id}", dependencies=[rule("os_compute_api:os-quota-sets:show")])
def show_quotas(
    project_id: str, request: Request, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    if project_id != ctx.project_id and not ctx.is_admin:
        raise refusal("os_compute_api:os-quota-sets:show")
    return _quota_set(request, project_id, quota.get_limits(session, project_id), None)


@router.get(
    "/os-quota-sets/{project_id}/detail", dependencies=[rule("os_compute_api:os-quota-sets:detail")]
)
def show_quota_usage(
    project_id: str, request: Request, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    if project_id != ctx.project_id and not ctx.is_admin:
        raise refusal("os_compute_api:os-quota-sets:detail")
    return _quota_set(
        request, project_id, quota.get_limits(session, project_id), usage(session, project_id)
    )


def usage(session: SessionDep, project_id: str) -> dict[str, int]:
    used = quota.get_usage(session, project_id) | quota.group_usage(session, project_id)
    used["server_group_members"] = 0  # (a limit per group: Nova shows no use of it here)
    return used


@router.get(
    "/os-novaflow-quota-sets/{project_id}/detail",
    dependencies=[rule("os_compute_api:os-quota-sets:detail")],
)
def show_extension_quota_usage(
    project_id: str, request: Request, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    """novaflow's extension: the limits and use of what Nova's quota sets do not show
    (ports)."""
    if project_id != ctx.project_id and not ctx.is_admin:
        raise refusal("os_compute_api:os-quota-sets:detail")
    hard = quota.get_limits(session, project_id)
    # From 2.36 Nova's quota sets no longer show the floating IPs novaflow still limits.
    names = EXTENSION_QUOTAS + (("floating_ips",) if current.get() >= (2, 36) else ())
    return _quota_set(request, project_id, hard, usage(session, project_id), names)


@router.get(
    "/os-quota-sets/{project_id}/defaults",
    dependencies=[rule("os_compute_api:os-quota-sets:defaults")],
)
def show_default_quotas(project_id: str, request: Request) -> dict[str, Any]:
    return _quota_set(request, project_id, dict(quota.DEFAULT_LIMITS), None)


@router.put(
    "/os-quota-sets/{project_id}", dependencies=[rule("os_compute_api:os-quota-sets:update")]
)
def update_quotas(
    project_id: str, request: Request, body: Annotated[QuotaSetBody, Body()], db: DbDep
) -> dict[str, Any]:
    updates = {
        k: v for k, v in body.quota_set.model_dump(exclude={"force"}).items() if v is not None
    }
    with db.write() as session:
        limits = quota.set_limits(session, project_id, updates, force=bool(body.quota_set.force))
        return _quota_set(request, None, limits, None)  # (Nova's answer has no id)
