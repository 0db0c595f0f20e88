"""os-services and os-simple-tenant-usage at 2.1 validate against tempest's copies of Nova's
schemas (tempest.lib.api_schema.response.compute.v2_1.services and .tenant_usages), as the
other resources do in test_tempest_schemas.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tempest.lib.api_schema.response.compute.v2_1 import services as services_schema
from tempest.lib.api_schema.response.compute.v2_1 import tenant_usages as usage_schema

from tests.integration.client import NovaClient
from tests.integration.test_tempest_schemas import valid


def test_services(nova: NovaClient) -> None:
    valid(services_schema.list_services, nova.admin.get("/v2.1/os-services"))
    compute = {"host": "host-b", "binary": "nova-compute"}
    try:
        valid(
            services_schema.disable_log_reason,
            nova.admin.put(
                "/v2.1/os-services/disable-log-reason", json={**compute, "disabled_reason": "x"}
            ),
        )
        valid(
            services_schema.enable_disable_service,
            nova.admin.put("/v2.1/os-services/disable", json=compute),
        )
        valid(services_schema.list_services, nova.admin.get("/v2.1/os-services?host=host-b"))
    finally:
        valid(
            services_schema.enable_disable_service,
            nova.admin.put("/v2.1/os-services/enable", json=compute),
        )


def test_tenant_usage(nova: NovaClient, server: str) -> None:
    deleted = nova.create_ok(name="deleted")  # a terminated one, with its ended_at
    nova.wait_status(deleted, "ACTIVE")  # (one deleted before it ran used nothing: unlisted)
    nova.delete_and_wait(deleted)
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    query = f"start={start}"
    valid(usage_schema.list_tenant_usage, nova.admin.get(f"/v2.1/os-simple-tenant-usage?{query}"))
    valid(
        usage_schema.list_tenant_usage,
        nova.admin.get(f"/v2.1/os-simple-tenant-usage?{query}&detailed=1"),
    )
    shown = valid(
        usage_schema.get_tenant_usage,
        nova.http.get(f"/v2.1/os-simple-tenant-usage/{nova.project}?{query}"),
    )
    assert len(shown["tenant_usage"]["server_usages"]) == 2
