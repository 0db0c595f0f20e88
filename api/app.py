"""The FastAPI application: stateless, validates, records the request, starts workflows.

uvicorn api.app:app --port 8774
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from temporalio.client import Client

import codec
from api import auth, codec_server, errors, microversion, openapi, request_id, sizelimit, views
from api.auth import NOAUTH_WARNING
from api.routers import (
    catalog,
    discovery,
    extensions,
    hosts,
    images,
    keypairs,
    migrations,
    networks,
    neutron,
    quotas,
    server_groups,
    servers,
    services,
    tenant_usage,
    versions,
    zones,
)
from novaflow.config import Settings, get_settings
from novaflow.db import Database

log = logging.getLogger("novaflow.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    authenticator = auth.authenticator_for(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # noauth on a non-loopback address: refused here, loudly (uvicorn then exits).
        auth.check_listen_address(settings, auth.listen_host())
        if settings.auth_strategy == "noauth":
            log.warning("!" * 20 + " %s " + "!" * 20, NOAUTH_WARNING)
        refresh_keys = getattr(authenticator, "refresh_keys", None)  # keycloak's
        if refresh_keys is not None:
            try:  # the realm's keys now rather than at the first request (fetched then if down)
                await refresh_keys(force=True)
            except Exception as error:
                log.warning("Keycloak's keys are not fetched yet: %s", error)
        app.state.settings = settings
        app.state.db = Database(settings.database_url)
        app.state.temporal = await Client.connect(  # every payload encrypted (codec/)
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=codec.data_converter(
                codec.load_keys(settings.payload_keys, settings.state_dir)
            ),
        )
        yield
        app.state.db.dispose()

    app = FastAPI(
        title="novaflow compute API",
        version="2.1",
        description="OpenStack Nova's compute API; every operation is a durable Temporal workflow.",
        lifespan=lifespan,
    )
    errors.install(app)
    openapi.install(app)  # /openapi.json declares every refusal, in Nova's fault shape

    @app.middleware("http")
    async def remember_base_url(request: Request, call_next):  # type: ignore[no-untyped-def]
        views.base_url.set(str(request.base_url).rstrip("/"))
        return await call_next(request)

    @app.middleware("http")
    async def refuse_unstorable_text(request: Request, call_next):  # type: ignore[no-untyped-def]
        """Text no database stores (a NUL) or nothing encodes (a lone surrogate) is refused
        here, naming where it is, before it reaches a query and fails there as a 500."""
        found = errors.bad_text_in_url(request.scope["path"], request.query_params.multi_items())
        # An image's bytes are no text (and are streamed to the store, never held here).
        binary = request.headers.get("content-type", "").startswith("application/octet-stream")
        if found is None and request.method in ("POST", "PUT", "PATCH") and not binary:
            found = errors.bad_text_in_body(await request.body())
        if found is not None:
            field, problem = found
            return errors.error_response(
                400, f"Invalid input for field/attribute {field}. {problem}"
            )
        return await call_next(request)

    # Outside the middlewares above: the caller is authenticated before anything reads the
    # body (api/auth.py); only the versions document and the API docs are public.
    app.add_middleware(auth.Authenticate, settings=settings, authenticator=authenticator)
    # The Temporal UI's codec endpoint: CORS, its sign-in page, its cookie (api/codec_server.py).
    app.add_middleware(codec_server.CodecFront, settings=settings, authenticator=authenticator)

    # Added last, so outermost: bodies are limited before the middlewares above, authentication
    # or FastAPI read them (Nova's sizelimit). Only an image's data upload is exempt (see there).
    app.add_middleware(
        sizelimit.BodySizeLimit,
        max_bytes=settings.max_request_body_size,
        exempt=sizelimit.image_data_upload,
    )
    # Outside even that: every answer, a refusal of the layers above included, carries the
    # request id and the compute microversion it was served in (api/microversion.py).
    app.add_middleware(microversion.Negotiate)
    app.add_middleware(request_id.RequestId)

    for module in (
        servers, catalog, networks, quotas, hosts, services, tenant_usage, server_groups, zones,
        keypairs, migrations, images, neutron, discovery, codec_server, versions, extensions,
    ):  # fmt: skip
        app.include_router(module.router)

    return app


app = create_app()
