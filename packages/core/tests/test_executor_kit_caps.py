"""OutputCap, cap_text and effective_limit."""

from __future__ import annotations

import pytest

from aipartnerupflow.core.executors import OutputCap, cap_text, effective_limit


def test_keeps_up_to_the_limit_and_counts_the_rest() -> None:
    cap = OutputCap(10)
    assert cap.feed(b"12345") is True
    assert cap.feed(b"67890abc") is False
    assert cap.feed(b"def") is False
    assert cap.data == b"1234567890"
    assert cap.truncated is True
    assert cap.dropped == 6
    assert cap.total == 16
    assert cap.report() == {"truncated": True, "size": 16, "dropped_bytes": 6, "limit": 10}


def test_exactly_the_limit_is_not_truncated() -> None:
    cap = OutputCap(4)
    assert cap.feed(b"abcd") is True
    assert cap.report() == {"truncated": False, "size": 4, "dropped_bytes": 0, "limit": 4}


def test_zero_limit_keeps_nothing() -> None:
    cap = OutputCap(0)
    cap.feed(b"abc")
    assert (cap.data, cap.dropped, cap.truncated) == (b"", 3, True)


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="zero or more"):
        OutputCap(-1)


def test_text_replaces_undecodable_bytes_and_a_cut_character() -> None:
    cap = OutputCap(3)
    cap.feed("aé€".encode())  # a (1) + é (2) + € (3): the cut falls inside €
    assert cap.text() == "aé"
    raw = OutputCap()
    raw.feed(b"\xff\xfeok")
    assert raw.text() == "\ufffd\ufffdok"


def test_many_small_chunks() -> None:
    cap = OutputCap(1000)
    for _ in range(10_000):
        cap.feed(b"x")
    assert (len(cap.data), cap.dropped) == (1000, 9000)


@pytest.mark.parametrize(
    ("text", "limit", "kept", "dropped"),
    [
        ("hello", 10, "hello", 0),
        ("hello", 3, "hel", 2),
        ("héllo", 2, "h", 4),  # é is two bytes: the half character is dropped
        ("", 0, "", 0),
    ],
)
def test_cap_text(text: str, limit: int, kept: str, dropped: int) -> None:
    assert cap_text(text, limit) == (kept, dropped)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [(None, 100), (50, 50), (500, 100), (0, 0), (-1, 100), (True, 100), ("50", 100), (1.5, 100)],
)
def test_effective_limit_never_exceeds_the_ceiling(requested: object, expected: int) -> None:
    assert effective_limit(requested, 100) == expected
