"""Compute API microversions: which version a request asked for, and the headers that say
which one it was served in. This module owns negotiation; nothing else reads the headers.

It applies to the compute API's paths (`/`, `/v2.1...`); Glance's (`/image/...`) and the
Temporal UI's codec endpoint are no compute API and are left alone.

A request names its version in `OpenStack-API-Version: compute X.Y` (the header may carry
several services, comma-separated: `compute 2.1, volume 3.0`) or, failing a compute entry
there, in the legacy `X-OpenStack-Nova-API-Version: X.Y`. `latest` means the maximum; no
header means the minimum, 2.1 (as Nova). A version that is no `X.Y` is a 400; one outside
[MIN_VERSION, MAX_VERSION] a 406 (`computeFault`, Nova's message). Every response, errors
included, says what it was served in (`OpenStack-API-Version: compute X.Y`,
`X-OpenStack-Nova-API-Version: X.Y`, and `Vary` on both); a refused version is answered in the
minimum.

Handlers read the negotiated version with `MicroversionDep` (or `current.get()`), a `Version`
that compares with tuples: `if version >= (2, 47): ...`.

MAX_VERSION is the highest version whose every body and behaviour change novaflow serves as
Nova does (openstacksdk and python-novaclient pick the highest both sides know, so a higher
maximum would lie to them). Each version, once, with what it changes here (Nova's history;
"-": nothing novaflow serves changes):

- 2.2  keypairs: `type` in bodies and on create; create answers 201, delete 204 (202 before)
- 2.3  servers (admin): OS-EXT-SRV-ATTR reservation_id, launch_index, hostname, kernel_id,
       ramdisk_id, root_device_name, user_data
- 2.4  - (os-fixed-ips)
- 2.5  servers list: the ip6 filter for non-admins too (it matches nothing: IPv4 only here)
- 2.6 to 2.8  - (remote consoles, flavor access)
- 2.9  servers: `locked` in show, detail, update and rebuild answers
- 2.10 keypairs: an admin names the user (`?user_id=`, `user_id` on create)
- 2.11 os-services' forced_down (api/routers/services.py)
- 2.12 - (os-virtual-interfaces)
- 2.13 server groups: project_id, user_id
- 2.14 - (evacuate)
- 2.15 server groups: soft-affinity, soft-anti-affinity
- 2.16 servers (admin): host_status in show and detail
- 2.17 servers: the trigger_crash_dump action
- 2.18 - (no project id in URLs: novaflow's have none)
- 2.19 servers: `description` on create, update, rebuild and in their answers
- 2.20 - (volumes of shelved servers)
- 2.21 instance actions of a deleted server (404 before)
- 2.22 POST /servers/{id}/migrations/{id}/action force_complete (409: no server is
       live-migrating)
- 2.23 os-migrations: migration_type; GET /servers/{id}/migrations[/{id}] (live migrations
       in progress: novaflow has none)
- 2.24 DELETE /servers/{id}/migrations/{id} (409: no server is live-migrating)
- 2.25 - (live migration's block_migration "auto")
- 2.26 servers: tags (`tags` in answers, /servers/{id}/tags, the tags filters)
- 2.27 - (the OpenStack-API-Version header: always accepted here)
- 2.28 hypervisors: cpu_info an object
- 2.29 to 2.31 - (evacuate, live migration, console tokens)
- 2.32 create: a `tag` on networks entries
- 2.33 hypervisors: limit, marker
- 2.34 - (live migration checks)
- 2.35 keypairs: limit, marker
- 2.36 the proxy APIs are gone (/images, /os-networks: 404); limits and quota sets drop the
       network resources (floating_ips, fixed_ips, security groups); PUT refuses floating_ips
- 2.37 create: `networks` required, "auto" or "none" allowed; network uuids must be uuids
- 2.38 servers list: an unknown status is a 400 (an empty list before)
- 2.39 limits: no maxImageMeta
- 2.40 os-simple-tenant-usage: limit, marker (api/routers/tenant_usage.py)
- 2.41 to 2.46 - (aggregates uuid, os-hosts, floating-IP actions, createImage); 2.42 brings
       back the networks' `tag` that 2.33 to 2.41 refuse
- 2.47 servers: the flavor embedded as a dict (also in update and rebuild answers)
- 2.48 diagnostics in Nova's standard format (libvirt's own keys before)
- 2.49, 2.50 - (volume tags, quota classes)
- 2.51 instance actions: events for non-admins too
- 2.52 create: `tags`
- 2.53 hypervisors (and services): uuid ids; hypervisor_hostname_pattern, with_servers
- 2.54 rebuild: `key_name`; its answer has key_name
- 2.55 flavors: `description`
- 2.56 migrate: `host`
- 2.57 rebuild: `user_data` (and in its answer); limits and quota sets drop personality
- 2.58 instance actions: updated_at; limit, marker, changes-since
- 2.59 os-migrations: uuid; limit, marker, changes-since
- 2.60 - (multiattach volumes)
- 2.61 flavors: `extra_specs` (for whoever may read them)
- 2.62 instance action events: hostId (everyone), host (admin)

2.63 is not served: it takes trusted image certificates on create and rebuild and validates a
signed image against them; novaflow verifies no image signature, so it would accept
certificates it then ignores.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Annotated, Any, NamedTuple

from fastapi import Depends, Request
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from novaflow.errors import NotFound

SERVICE = "compute"
HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"
VARY = f"{HEADER}, {LEGACY_HEADER}"


class Version(NamedTuple):
    """A microversion; a tuple, so `version >= (2, 47)` reads as it should."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


MIN_VERSION = Version(2, 1)
MAX_VERSION = Version(2, 62)  # see the module's docstring before raising it

# Nova's APIVersionRequest: no leading zeros, minor 0 allowed.
_VERSION = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")

# The version the current request is served in (set per request by `Negotiate`).
current: ContextVar[Version] = ContextVar("microversion", default=MIN_VERSION)


class VersionRefused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def requested(headers: Headers) -> str | None:
    """The version string the request names for compute, or None (as microversion-parse does:
    an entry of the standard header that is no `<service> <version>` pair is skipped)."""
    standard = ",".join(headers.getlist(HEADER))
    for entry in standard.split(","):
        parts = entry.split()
        if len(parts) == 2 and parts[0].lower() == SERVICE:
            return parts[1]
    legacy = ",".join(headers.getlist(LEGACY_HEADER)).strip()
    return legacy or None


def parse(text: str) -> Version:
    """`X.Y` as a Version; VersionRefused (400) for anything else."""
    found = _VERSION.match(text)
    if found is None:
        raise VersionRefused(
            400,
            f"API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum.",
        )
    return Version(int(found.group(1)), int(found.group(2)))


def negotiate(headers: Headers) -> Version:
    """The version a request is served in; VersionRefused (400 malformed, 406 out of range)."""
    text = requested(headers)
    if text is None:
        return MIN_VERSION
    if text.lower() == "latest":
        return MAX_VERSION
    version = parse(text)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise VersionRefused(
            406,
            f"Version {text} is not supported by the API. Minimum is {MIN_VERSION} and "
            f"maximum is {MAX_VERSION}.",
        )
    return version


def stamp(headers: MutableHeaders, version: Version) -> None:
    """The version headers of a response; `Vary` keeps what another layer put there."""
    headers[HEADER] = f"{SERVICE} {version}"
    headers[LEGACY_HEADER] = str(version)
    vary = headers.get("vary")
    headers["Vary"] = f"{vary}, {VARY}" if vary else VARY


def is_compute(path: str) -> bool:
    return path in ("/", "/v2.1") or path.startswith("/v2.1/")


class Negotiate:
    """Pure ASGI, outermost: negotiates before anything else answers (authentication, the body
    limit), so every response, a refusal of theirs included, carries the version headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_compute(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            version = negotiate(Headers(scope=scope))
        except VersionRefused as refused:
            response = errors.error_response(refused.code, refused.message)
            stamp(response.headers, MIN_VERSION)
            await response(scope, receive, send)
            return

        async def send_stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                stamp(MutableHeaders(scope=message), version)
            await send(message)

        scope.setdefault("state", {})["microversion"] = version
        token = current.set(version)
        try:
            await self.app(scope, receive, send_stamped)
        finally:
            current.reset(token)


def microversion(request: Request) -> Version:
    return getattr(request.state, "microversion", MIN_VERSION)


MicroversionDep = Annotated[Version, Depends(microversion)]


def since(version: tuple[int, int]) -> Any:
    """`dependencies=[since((2, 26))]` on a route Nova added at that version: before it, the
    route does not exist (404, as Nova's version-gated routes)."""

    def exists(request: Request) -> None:
        if microversion(request) < version:
            raise NotFound("The resource could not be found.")

    return Depends(exists)


def until(version: tuple[int, int]) -> Any:
    """`dependencies=[until((2, 36))]` on a route Nova removed at that version (a proxy API):
    from it on, the route does not exist (404, as Nova)."""

    def exists(request: Request) -> None:
        if microversion(request) >= version:
            raise NotFound("The resource could not be found.")

    return Depends(exists)


def refused_from(version: tuple[int, int], field: str) -> None:
    """A request field Nova's schema dropped at `version`: from it on, the 400 of an unknown
    property (raised from a pydantic validator, which names it)."""
    if current.get() >= version:
        raise ValueError(f"Additional properties are not allowed ('{field}' was unexpected)")


def refused_before(version: tuple[int, int], field: str) -> None:
    """A request field Nova's schema only has from `version`: before it, the 400 Nova's
    schema gives an unknown property (raised from a pydantic validator, which names it)."""
    if current.get() < version:
        raise ValueError(f"Additional properties are not allowed ('{field}' was unexpected)")
