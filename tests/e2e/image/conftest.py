"""The image built by operator/build-image (cached per input hash), unpacked for chroot runs."""

from __future__ import annotations

import os

import pytest

from image_builds import Layout, build_layout, why_not_buildable


@pytest.fixture(scope="session")
def image_layout() -> Layout:
    reason = why_not_buildable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return build_layout()
