"""Every test session keeps the runtime's state (synthetic checkpoints, converted weights,
compile caches) in a fresh folder of its own, never in the user's state directory."""
import os
import tempfile

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir():
    with tempfile.TemporaryDirectory(prefix="virnucpro-test-state-") as directory:
        previous = os.environ.get("VIRNUCPRO_STATE_DIR")
        os.environ["VIRNUCPRO_STATE_DIR"] = directory
        yield directory
        if previous is None:
            del os.environ["VIRNUCPRO_STATE_DIR"]
        else:
            os.environ["VIRNUCPRO_STATE_DIR"] = previous
