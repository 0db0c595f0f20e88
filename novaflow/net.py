"""Network addresses as the processes' command lines give them."""

from __future__ import annotations

import argparse
import ipaddress


def parse_address(text: str) -> tuple[str, int]:
    """ADDRESS:PORT (an IPv6 address in brackets) -> (address, port)."""
    address, _, port = text.rpartition(":")
    address = address.strip("[]")
    if not address or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected ADDRESS:PORT, got {text!r}")
    return address, int(port)


def parse_advertised_address(text: str) -> tuple[str, int]:
    """An address other hosts are told to reach: a wildcard (0.0.0.0, ::) names none."""
    address, port = parse_address(text)
    try:
        wildcard = ipaddress.ip_address(address).is_unspecified
    except ValueError:  # a host name
        wildcard = False
    if wildcard:
        raise argparse.ArgumentTypeError(
            f"{address} is no address other hosts can reach: give the one they use"
        )
    return address, port


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"
