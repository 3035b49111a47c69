"""Byte units, and the only place sizes are turned into labelled text."""

from __future__ import annotations

BYTES_PER_GIB = 2**30
BYTES_PER_MIB = 2**20
BYTES_PER_GB = 10**9


def gib(size_bytes: float) -> float:
    """Bytes to GiB (2^30)."""
    return size_bytes / BYTES_PER_GIB


def gb(size_bytes: float) -> float:
    """Bytes to GB (10^9)."""
    return size_bytes / BYTES_PER_GB


def format_bytes(size_bytes: float) -> str:
    """'12.34 GiB (13.25 GB)': both units, labelled, for tables and messages."""
    return f"{gib(size_bytes):,.2f} GiB ({gb(size_bytes):,.2f} GB)"


def format_params(count: float) -> str:
    """'30.70B' / '569.5M': parameter counts as people quote them."""
    if abs(count) >= 1e9:
        return f"{count / 1e9:,.2f}B"
    if abs(count) >= 1e6:
        return f"{count / 1e6:,.1f}M"
    return f"{count:,.0f}"
