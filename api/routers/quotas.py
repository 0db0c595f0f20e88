"""/v2.1/limits and /v2.1/os-quota-sets/{project}: quotas and what is used of them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from api.deps import ContextDep, DbDep, SessionDep
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
    return {
        "limits": {
            "rate": [],
            "absolute": {
                "maxTotalInstances": hard["instances"],
                "maxTotalCores": hard["cores"],
                "maxTotalRAMSize": hard["ram"],
                "maxTotalFloatingIps": hard["floating_ips"],
                "maxTotalPorts": hard["ports"],
                "maxServerMeta": server_metadata.MAX_ITEMS,
                "maxServerGroups": hard["server_groups"],
                "maxServerGroupMembers": hard["server_group_members"],
                "maxTotalKeypairs": request.app.state.settings.keypairs_per_user,
                "totalInstancesUsed": used["instances"],
                "totalCoresUsed": used["cores"],
                "totalRAMUsed": used["ram"],
                "totalFloatingIpsUsed": used["floating_ips"],
                "totalPortsUsed": used["ports"],
                "totalServerGroupsUsed": used["server_groups"],
            },
        }
    }


def _quota_set(
    project_id: str, hard: dict[str, int], used: dict[str, int] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": project_id}
    for name in quota.LIMITED:
        body[name] = (
            hard[name]
            if used is None
            else {"limit": hard[name], "in_use": used[name], "reserved": 0}
        )
    return {"quota_set": body}


@router.get("/os-quota-sets/{project_id}", dependencies=[rule("os_compute_api:os-quota-sets:show")])
def show_quotas(project_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    if project_id != ctx.project_id and not ctx.is_admin:
        raise refusal("os_compute_api:os-quota-sets:show")
    return _quota_set(project_id, quota.get_limits(session, project_id), None)


@router.get(
    "/os-quota-sets/{project_id}/detail", dependencies=[rule("os_compute_api:os-quota-sets:detail")]
)
def show_quota_usage(project_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    if project_id != ctx.project_id and not ctx.is_admin:
        raise refusal("os_compute_api:os-quota-sets:detail")
    used = quota.get_usage(session, project_id) | quota.group_usage(session, project_id)
    used["server_group_members"] = 0  # (a limit per group: Nova shows no use of it here)
    return _quota_set(project_id, quota.get_limits(session, project_id), used)


@router.get(
    "/os-quota-sets/{project_id}/defaults",
    dependencies=[rule("os_compute_api:os-quota-sets:defaults")],
)
def show_default_quotas(project_id: str) -> dict[str, Any]:
    return _quota_set(project_id, dict(quota.DEFAULT_LIMITS), None)


@router.put(
    "/os-quota-sets/{project_id}", dependencies=[rule("os_compute_api:os-quota-sets:update")]
)
def update_quotas(
    project_id: str, body: Annotated[QuotaSetBody, Body()], db: DbDep
) -> dict[str, Any]:
    updates = {
        k: v for k, v in body.quota_set.model_dump(exclude={"force"}).items() if v is not None
    }
    with db.write() as session:
        limits = quota.set_limits(session, project_id, updates, force=bool(body.quota_set.force))
        return _quota_set(project_id, limits, None)
