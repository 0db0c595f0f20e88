"""The end of a console log as os-getConsoleOutput answers it: the last lines of a bounded read."""

from __future__ import annotations

from pathlib import Path

import pytest

from novaflow.virt.console import MAX_CONSOLE_BYTES, last_lines, read_tail

LOG = b"one\ntwo\nthree\n"


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (None, "one\ntwo\nthree\n"),
        (-1, "one\ntwo\nthree\n"),
        (0, ""),
        (1, "three\n"),
        (2, "two\nthree\n"),
        (3, "one\ntwo\nthree\n"),
        (50, "one\ntwo\nthree\n"),
    ],
)
def test_last_lines_counts_lines_from_the_end(length: int | None, expected: str) -> None:
    assert last_lines(LOG, length) == expected


def test_a_last_line_without_newline_is_a_line() -> None:
    assert last_lines(b"one\ntwo\nthree", 1) == "three"
    assert last_lines(b"one\ntwo\nthree", 2) == "two\nthree"
    assert last_lines(b"one\ntwo\nthree", None) == "one\ntwo\nthree"


def test_empty_logs_and_blank_lines() -> None:
    assert last_lines(b"", None) == "" and last_lines(b"", 5) == ""
    assert last_lines(b"\n\n", 1) == "\n"
    assert last_lines(b"a\n\nb\n", 2) == "\nb\n"


def test_crlf_becomes_lf_and_control_characters_go() -> None:
    serial = b"\x1b[0mBooting\r\nNOVAFLOW-BOOTED\r\n\x00ok\tdone\r\n"
    assert last_lines(serial, None) == "[0mBooting\nNOVAFLOW-BOOTED\nok\tdone\n"
    assert last_lines(serial, 2) == "NOVAFLOW-BOOTED\nok\tdone\n"


def test_bytes_that_are_not_utf8_become_replacement_characters() -> None:
    assert last_lines("é\n".encode() + b"\xff\n", None) == "é\n\ufffd\n"


def test_a_cut_log_drops_its_first_fragment_unless_it_is_all_there_is() -> None:
    assert last_lines(b"gment\nwhole\n", None, cut=True) == "whole\n"
    assert last_lines(b"only a fragment\n", None, cut=True) == "only a fragment\n"
    # A cut inside a UTF-8 character leaves no replacement character behind.
    assert last_lines("é tail\nwhole\n".encode()[1:], None, cut=True) == "whole\n"


def test_a_length_below_minus_one_is_refused() -> None:
    with pytest.raises(ValueError, match="length"):
        last_lines(LOG, -2)


def test_read_tail_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_tail(tmp_path / "absent.log", None) == ""


def test_read_tail_reads_a_small_file_whole(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"a\r\nb\r\nc")
    assert read_tail(log, None) == "a\nb\nc"
    assert read_tail(log, 2) == "b\nc"


def test_read_tail_reads_at_most_the_bound_from_the_end(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    line = b"x" * 99 + b"\n"  # 100 bytes a line
    count = MAX_CONSOLE_BYTES // len(line) * 3  # three times the bound
    log.write_bytes(b"".join(b"%06d" % i + line for i in range(count)) + b"last")
    whole = read_tail(log, None)
    assert len(whole.encode()) <= MAX_CONSOLE_BYTES
    assert whole.endswith("\nlast")
    # It starts at the first whole line within the bound (the fragment before it is dropped).
    first = int(whole[:6])
    assert count - first == (MAX_CONSOLE_BYTES - len("last")) // 106
    assert whole == "".join(f"{i:06d}{'x' * 99}\n" for i in range(first, count)) + "last"
    assert read_tail(log, 2) == f"{count - 1:06d}{'x' * 99}\nlast"
    # A smaller bound, with the last line alone bigger than it: the fragment is all there is.
    assert read_tail(log, None, max_bytes=3) == "ast"
    assert read_tail(log, 10, max_bytes=250) == whole[-(106 * 2 + 4) :]
