"""A guest's console log as Nova's os-getConsoleOutput answers it: its last lines, as text.

The log is a file the hypervisor appends to for as long as the guest runs, so it is read from
its end and never more than `MAX_CONSOLE_BYTES` of it: a guest that has been chatty for months
costs the same as one that just booted.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# As Nova's libvirt driver: enough for a boot, and far below Temporal's payload limit even
# when every byte is escaped in JSON.
MAX_CONSOLE_BYTES = 100 * 1024

# Control characters but tab and newline (as Nova strips them): terminal escapes, NULs, and the
# carriage returns of a serial line's CRLF (after CRLF became LF).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def read_tail(path: Path, length: int | None, max_bytes: int = MAX_CONSOLE_BYTES) -> str:
    """The last `length` lines of the file at `path` (None or -1: all it holds within the
    bound), reading at most its last `max_bytes`. A missing file is an empty log."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            # The byte before the window says whether its first line is whole.
            log.seek(max(0, start - 1))
            cut = start > 0 and log.read(1) != b"\n"
            data = log.read(max_bytes)
    except FileNotFoundError:
        return ""
    return last_lines(data, length, cut=cut)


def last_lines(data: bytes, length: int | None, cut: bool = False) -> str:
    """The last `length` lines of `data` as text (None or -1: all of them; 0: none).

    `cut`: `data` is the end of a longer log, so its first line is likely a fragment (and may
    start inside a UTF-8 character): it is dropped, unless it is the only line there is.
    Lines end at LF; a final line without one still counts. CRLF becomes LF, other control
    characters but tab are removed, and bytes that are not UTF-8 become U+FFFD."""
    if cut:
        newline = data.find(b"\n")
        if 0 <= newline < len(data) - 1:
            data = data[newline + 1 :]
    text = _CONTROL.sub("", data.decode("utf-8", errors="replace").replace("\r\n", "\n"))
    if length is None or length == -1:
        return text
    if length < 0:
        raise ValueError(f"length: must be -1 or more (got {length})")
    if length == 0:
        return ""
    lines = text.split("\n")
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    kept = lines[-length:]
    return "\n".join(kept) + ("\n" if ends_with_newline and kept else "")
