"""Durable operations on servers, one module each. Deterministic code only."""

from workflows.console_output import ServerConsoleOutput
from workflows.create_server import CreateServer
from workflows.delete_server import DeleteServer
from workflows.diagnostics import ServerDiagnostics
from workflows.server_action import ServerAction

ALL_WORKFLOWS = [CreateServer, DeleteServer, ServerAction, ServerDiagnostics, ServerConsoleOutput]
