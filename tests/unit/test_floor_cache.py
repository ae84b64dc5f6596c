"""On-disk AU floor cache (rtface/au/floor_cache.py), pure logic on a temporary cache folder."""
from __future__ import annotations

import numpy as np

from rtface.au import floor_cache


def test_key_depends_on_every_part() -> None:
    a = np.arange(6, dtype=np.float64)
    base = floor_cache.make_key(a, 300, 0.9)
    assert base == floor_cache.make_key(a.copy(), 300, 0.9)
    b = a.copy()
    b[3] += 1e-12
    assert len({base, floor_cache.make_key(b, 300, 0.9), floor_cache.make_key(a, 301, 0.9),
                floor_cache.make_key(a, 300, 0.95), floor_cache.make_key(a.reshape(2, 3), 300, 0.9)}) == 5


def test_round_trip_bad_files_and_unwritable_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RTFACE_CACHE_DIR", str(tmp_path / "cache"))
    key = floor_cache.make_key("x")
    assert floor_cache.load(key, 3) is None
    floor_cache.store(key, np.array([0.5, 1.0, 5.0]))
    np.testing.assert_array_equal(floor_cache.load(key, 3), [0.5, 1.0, 5.0])
    assert floor_cache.load(key, 4) is None  # wrong size: a miss, not an error
    path = tmp_path / "cache" / "floors" / f"{key}.npy"
    path.write_bytes(b"not an npy file")
    assert floor_cache.load(key, 3) is None
    np.save(path, np.array([np.nan, 1.0, 2.0]))
    assert floor_cache.load(key, 3) is None  # non-finite: recomputed
    (tmp_path / "ro").write_text("a file where the cache folder should be")
    monkeypatch.setenv("RTFACE_CACHE_DIR", str(tmp_path / "ro"))
    floor_cache.store(key, np.ones(3))  # no exception
    assert floor_cache.load(key, 3) is None
    assert not list(tmp_path.rglob("*.tmp"))
