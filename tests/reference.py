"""Where the shared reference data lives (`../shared/reference` next to the repository, or ZCC_REFERENCE_DIR).
Suites that need it skip with a clear message when it is absent — and only then."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REFERENCE_DIR = Path(
    os.environ.get("ZCC_REFERENCE_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "reference")
)
MISSING_MESSAGE = f"reference data not found at {REFERENCE_DIR} (clone next to ../shared or set ZCC_REFERENCE_DIR)"

requires_reference = pytest.mark.skipif(not REFERENCE_DIR.exists(), reason=MISSING_MESSAGE)
