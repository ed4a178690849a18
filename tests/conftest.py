"""Shared fixtures: paths of the real images bundled in data/real (see data/real/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of the real muscle images and reference masks."""
    assert REAL.is_dir(), f"missing {REAL}: the real test images ship with the repository"
    return REAL
