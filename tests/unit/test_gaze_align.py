"""Time alignment: nearest / interval rules, clock offset, out-of-span samples, interpolation weights."""
from __future__ import annotations

import numpy as np
import pytest

from rtface.errors import ConfigError, DataError
from rtface.gaze.align import (assign_frames, estimate_offset_ns, interpolate_landmarks, median_interval_ns,
                               neighbour_weights)
from rtface.gaze.aoi import AOIConfig

FT = np.array([1000, 2000, 3000, 4000], dtype=np.int64)


def test_nearest_and_interval_rules():
    t = np.array([1000, 1499, 1500, 1501, 2999, 4400, 4999, 5001, -1, 900])
    assert assign_frames(t, FT).tolist() == [0, 0, 0, 1, 2, 3, 3, -1, -1, 0]  # tie -> earlier frame
    assert assign_frames(t, FT, mode="interval").tolist() == [0, 0, 0, 0, 1, 3, 3, -1, -1, -1]
    assert assign_frames(t, FT, max_dist_ns=300).tolist() == [0, -1, -1, -1, 2, -1, -1, -1, -1, 0]
    with pytest.raises(DataError, match="unknown mode"):
        assign_frames(t, FT, mode="closest")


def test_offset_and_unsorted_frames():
    t = np.array([1100, 2100, 3100]) - 50_000
    assert assign_frames(t, FT, offset_ns=50_000).tolist() == [0, 1, 2]
    perm = np.array([2, 0, 3, 1])
    assert assign_frames(np.array([1100, 2100, 3100]), FT[perm]).tolist() == [1, 3, 0]  # original order
    assert assign_frames(np.array([5]), np.zeros(0, np.int64)).tolist() == [-1]


def test_estimate_offset():
    rng = np.random.default_rng(1)
    g = np.arange(0, 10_000_000_000, 1_000_000_000)
    s = g + 123_456_789 + rng.integers(-1000, 1000, g.size)
    s[3] += 50_000_000  # one outlier
    assert abs(estimate_offset_ns(g, s) - 123_456_789) < 2000
    assert median_interval_ns(FT) == 1000
    with pytest.raises(DataError):
        estimate_offset_ns(g, s[:-1])


def test_neighbour_weights_and_interpolation():
    t = np.array([1000, 1250, 1750, 3900, 4200, 500])
    k = assign_frames(t, FT)
    other, alpha = neighbour_weights(t, k, FT)
    assert other.tolist() == [1, 1, 0, 2, -1, -1]
    assert alpha.tolist() == pytest.approx([0.0, 0.25, 0.25, 0.1, 0.0, 0.0])
    a, b = np.zeros((478, 3)), np.ones((478, 3)) * 10
    assert interpolate_landmarks(a, b, 0.25)[0, 0] == pytest.approx(2.5)


def test_aoi_config_validation():
    with pytest.raises(ConfigError, match="aoi_shape"):
        AOIConfig(shape="boxes")
    with pytest.raises(ConfigError, match="mode"):
        AOIConfig(mode="first")
    with pytest.raises(ConfigError, match="unknown AOIs"):
        AOIConfig(priority=("iris",))
