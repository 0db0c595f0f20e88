"""Every workflow a control-plane worker runs. Kept out of workflows/__init__.py: the sandbox
imports a workflow's package for every run, and an __init__ that imported every workflow would
make each run import them all."""

from workflows.console_output import ServerConsoleOutput
from workflows.create_server import CreateServer
from workflows.delete_server import DeleteServer
from workflows.diagnostics import ServerDiagnostics
from workflows.rebuild_server import RebuildServer
from workflows.resize_server import ResizeServer
from workflows.server_action import ServerAction

ALL_WORKFLOWS = [
    CreateServer,
    DeleteServer,
    ServerAction,
    ResizeServer,
    RebuildServer,
    ServerDiagnostics,
    ServerConsoleOutput,
]
