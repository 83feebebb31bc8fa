"""Service-test fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def test_digits(real_digits, digit_split):
    """Real digits the model was not trained on (the fixture folder's test part)."""
    (x, y), test_idx = real_digits, digit_split[1]
    return x[test_idx], y[test_idx]
