"""The image tier: build the image once per session (cached across sessions by its inputs' hash).

Under CI (``CI=true``) these tests always run: a machine where podman cannot be installed or run
fails them with the reason. Locally, ``ISTIO_FEDERATION_SKIP_IMAGE=1`` skips them (under CI the
variable is ignored, as ``dev.py`` ignores the real-cluster tier's).
"""

from __future__ import annotations

import os

import pytest

from tests.image.build import BuiltImage, session_image
from tests.image.podman import ImageToolError, progress
from tests.support import in_ci

SKIP_VARIABLE = "ISTIO_FEDERATION_SKIP_IMAGE"



@pytest.fixture(scope="session")
def image() -> BuiltImage:
    if os.environ.get(SKIP_VARIABLE, "").strip() not in {"", "0"}:
        if not in_ci():
            pytest.skip(f"{SKIP_VARIABLE} is set: the container image is not built or run")
        progress(f"CI=true: the image tier is never skipped (ignoring {SKIP_VARIABLE})")
    try:
        return session_image()
    except ImageToolError as error:
        pytest.fail(
            f"the container image could not be built or run with podman on this machine:\n{error}", pytrace=False
        )
