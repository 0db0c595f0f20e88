"""POST /v2.1/servers/{id}/action: Nova's server actions, one endpoint whose body has a single
key naming the action, e.g. {"os-getConsoleOutput": {"length": 50}}.

Included by the servers router (same prefix). The endpoint only dispatches: each action is one
handler in ACTIONS, with its own model for its arguments (api/schemas.py). An action that
changes the server starts its workflow through the service layer (api/compute.py), whose
state gate answers 409/403 at once; it is then 202 with no body, as Nova.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from api.auth import RequestContext
from api.compute import ComputeAPI
from api.deps import ComputeDep, ContextDep
from api.microversion import current
from api.policy import PerAction, per_action
from api.schemas import (
    ConsoleOutputAction,
    LockAction,
    MigrateAction,
    NoArguments,
    RebootAction,
    RebuildAction,
    ResetStateAction,
    ResizeAction,
)
from novaflow.errors import Invalid
from workflows.contracts import Ticket

router = APIRouter(tags=["server actions"])

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ActionCall:
    """What every action handler gets: the server named in the URL, the caller, the service."""

    server_id: str
    ctx: RequestContext
    compute: ComputeAPI


def arguments(model: type[M], action: str, value: Any) -> M:
    """The action's arguments as `model`; a 400 naming the field (`<action>.<field>`)."""
    if not isinstance(value, dict):
        raise Invalid(f"Invalid input for field/attribute {action}. Value must be an object")
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", action, *e["loc"])} for e in error.errors()]
        ) from None


async def get_console_output(call: ActionCall, value: Any) -> dict[str, Any]:
    """The last `length` lines of the server's console log, read on its host. Hosts on
    libvirt's test driver run no guest and log no console: their answer is ""."""
    args = arguments(ConsoleOutputAction, "os-getConsoleOutput", value)
    length = None if args.length == -1 else args.length
    return {"output": await call.compute.console_output(call.ctx, call.server_id, length)}


Answer = dict[str, Any] | Response
Handler = Callable[[ActionCall, Any], Awaitable[Answer]]


def operation(key: str, action: str, model: type[BaseModel] = NoArguments) -> Handler:
    """The handler of the body key `key`, an action that runs as an operation (`action`, as
    novaflow/operations.py names it): 202 once its gate let it in."""

    async def start(call: ActionCall, value: Any) -> Answer:
        # `null` is no arguments, as Nova's {"os-stop": null} and {"lock": null}.
        args = arguments(model, key, {} if value is None else value).model_dump(exclude_none=True)
        options = {name: str(arg) for name, arg in args.items()}
        if "type" in options:
            options["type"] = options["type"].upper()
        ticket = await call.compute.act(call.ctx, call.server_id, action, options)
        return Response(status_code=202, headers={"x-openstack-request-id": ticket.request_id})

    return start


def _accepted(ticket: Ticket, status: int = 202) -> Response:
    return Response(status_code=status, headers={"x-openstack-request-id": ticket.request_id})


async def resize(call: ActionCall, value: Any) -> Answer:
    """A new flavor: 202 once the gate checked the flavor (400) and reserved the quota for
    what grows (403); the server is then RESIZE, and VERIFY_RESIZE when it runs there."""
    args = arguments(ResizeAction, "resize", value)
    options = {"flavor_id": str(args.flavorRef)}
    return _accepted(await call.compute.move(call.ctx, call.server_id, "resize", options))


async def migrate(call: ActionCall, value: Any) -> Answer:
    """A cold migration (admin): the same flavor on another host, then VERIFY_RESIZE."""
    args = arguments(MigrateAction, "migrate", {} if value is None else value)
    options = {"host": args.host} if args.host else {}
    return _accepted(await call.compute.move(call.ctx, call.server_id, "migrate", options))


async def rebuild(call: ActionCall, value: Any) -> Answer:
    """A new disk from `imageRef` on the same host, same ports and IPs: 202 with the server
    (REBUILD) and its adminPass, as Nova; 400 naming imageRef, 409 from the server's state."""
    args = arguments(RebuildAction, "rebuild", value)
    options = {"image_id": args.imageRef}
    if args.name is not None:
        options["name"] = args.name
    if args.metadata is not None:
        options["metadata"] = json.dumps(args.metadata)
    # Given (null included: it clears them), they replace the server's (2.19, 2.54, 2.57).
    for name in ("description", "key_name", "user_data"):
        if name in args.model_fields_set:
            options[name] = json.dumps(getattr(args, name))
    ticket, server = await call.compute.rebuild(call.ctx, call.server_id, options)
    body = {"server": {**server, "adminPass": args.adminPass or secrets.token_urlsafe(9)}}
    return JSONResponse(
        body, status_code=202, headers={"x-openstack-request-id": ticket.request_id}
    )


async def trigger_crash_dump(call: ActionCall, value: Any) -> Answer:
    """An NMI to the guest (Nova 2.17), whose kernel may answer with a crash dump: 202, its
    body `null` only (Nova's schema)."""
    if value is not None:
        raise Invalid("Invalid input for field/attribute trigger_crash_dump. Value must be null")
    return await operation("trigger_crash_dump", "trigger_crash_dump")(call, None)


def decision(key: str, action: str, status: int) -> Handler:
    """confirmResize (204) or revertResize (202): an update of the move's running workflow."""

    async def decide(call: ActionCall, value: Any) -> Answer:
        arguments(NoArguments, key, {} if value is None else value)
        return _accepted(await call.compute.decide(call.ctx, call.server_id, action), status)

    return decide


ACTIONS: dict[str, Handler] = {
    "os-getConsoleOutput": get_console_output,
    "os-stop": operation("os-stop", "stop"),
    "os-start": operation("os-start", "start"),
    "reboot": operation("reboot", "reboot", RebootAction),
    "pause": operation("pause", "pause"),
    "unpause": operation("unpause", "unpause"),
    "suspend": operation("suspend", "suspend"),
    "resume": operation("resume", "resume"),
    "lock": operation("lock", "lock", LockAction),
    "unlock": operation("unlock", "unlock"),
    "os-resetState": operation("os-resetState", "resetState", ResetStateAction),
    "rebuild": rebuild,
    "resize": resize,
    "migrate": migrate,
    "confirmResize": decision("confirmResize", "confirmResize", 204),
    "revertResize": decision("revertResize", "revertResize", 202),
    "trigger_crash_dump": trigger_crash_dump,
}
# Actions Nova added in a later microversion: unknown before it.
ACTION_SINCE = {"trigger_crash_dump": (2, 17)}


# Each action's policy rule (Nova's names), enforced once the body named the action.
ACTION_RULES = PerAction(
    {
        "os-getConsoleOutput": "os_compute_api:os-console-output",
        "os-stop": "os_compute_api:servers:stop",
        "os-start": "os_compute_api:servers:start",
        "reboot": "os_compute_api:servers:reboot",
        "pause": "os_compute_api:os-pause-server:pause",
        "unpause": "os_compute_api:os-pause-server:unpause",
        "suspend": "os_compute_api:os-suspend-server:suspend",
        "resume": "os_compute_api:os-suspend-server:resume",
        "lock": "os_compute_api:os-lock-server:lock",
        "unlock": "os_compute_api:os-lock-server:unlock",
        "os-resetState": "os_compute_api:os-admin-actions:reset_state",
        "rebuild": "os_compute_api:servers:rebuild",
        "resize": "os_compute_api:servers:resize",
        "migrate": "os_compute_api:os-migrate-server:migrate",
        "confirmResize": "os_compute_api:servers:confirm_resize",
        "revertResize": "os_compute_api:servers:revert_resize",
        "trigger_crash_dump": "os_compute_api:servers:trigger_crash_dump",
    }
)
assert set(ACTION_RULES.by_action) == set(ACTIONS), "every action has its rule"


def the_action(body: dict[str, Any]) -> str:
    if len(body) != 1:
        found = ", ".join(repr(key) for key in body) or "none"
        raise Invalid(
            "Invalid input for field/attribute body. "
            f"It must name exactly one action (found {found})"
        )
    [action] = body
    known = [a for a in ACTIONS if current.get() >= ACTION_SINCE.get(a, (2, 1))]
    if action not in known:
        raise Invalid(
            f"Invalid input for field/attribute body. Unknown action {action!r} "
            f"(known: {', '.join(known)})"
        )
    return action


@router.post("/{server_id}/action", dependencies=[per_action(ACTION_RULES)])
async def server_action(
    server_id: str,
    body: Annotated[dict[str, Any], Body()],
    ctx: ContextDep,
    compute: ComputeDep,
) -> Any:
    """One action per request, named by the body's only key: `os-getConsoleOutput`
    (`{"length": N}` optional; -1 or null: the whole log) answers 200 with the output; `os-stop`,
    `os-start`, `reboot` (`{"type": "SOFT"|"HARD"}`), `pause`, `unpause`, `suspend`, `resume`,
    `lock` (`{"locked_reason": ...}` optional), `unlock`, `os-resetState` (admin,
    `{"state": "active"|"error"}`), `rebuild` (`{"imageRef": ...}`: 202 with the server),
    `resize` (`{"flavorRef": ...}`), `migrate` (admin; `{"host": ...}` optional, 2.56),
    `trigger_crash_dump` (`null`, 2.17) and `revertResize` answer 202, `confirmResize` 204;
    or 409 from the server's state."""
    action = the_action(body)
    ACTION_RULES.enforce(ctx, action)
    call = ActionCall(server_id, ctx, compute)
    return await ACTIONS[action](call, body[action])
