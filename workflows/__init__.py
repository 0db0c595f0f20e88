"""Durable operations on servers, one module each (the list: workflows/registry.py).
Deterministic code only."""
