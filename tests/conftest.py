"""Shared fixtures.

Real camera data lives in ../shared/data (beside the checkout). Tests that need it
use the `shared_data` fixture: it skips on a developer machine without the data,
and FAILS when the CI variable is set, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sensorprint.errors import MediaError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data_dir() -> Path:
    """The shared data folder, or a skip (a failure under CI) when it is missing."""
    if (SHARED_DATA / "dresden-nikon").is_dir() and (SHARED_DATA / "vision-trio").is_dir():
        return SHARED_DATA
    message = f"shared real-camera data not found at {SHARED_DATA}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: data tests must not be skipped)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_dir()


def assert_one_line_media_error(call, *words):
    """call() raises a MediaError whose message is one line and names every word (lower case)."""
    with pytest.raises(MediaError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message.lower(), message
    return message
