from __future__ import annotations

import pytest

from gateway.summary.language import negotiate_language


@pytest.mark.parametrize(("header", "expected"), [
    (None, "nl"), ("", "nl"), ("en", "en"), ("en-GB,nl;q=0.5", "en"), ("nl-NL,en;q=0.9", "nl"),
    ("de,en;q=0.3", "en"), ("en;q=0,nl", "nl"), ("fr", "nl"), ("en;q=0.4,nl;q=0.8", "nl"), ("en;q=x", "nl"),
])
def test_negotiate_language(header: str | None, expected: str) -> None:
    assert negotiate_language(header) == expected
