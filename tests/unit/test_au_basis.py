"""Shipped AU basis (rtface/data/au_basis/au_basis.npz) and its loader: names, shapes, anatomy, NNLS recovery.

Fast: loads the shipped file only (no rendering, no MediaPipe).
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from scipy.optimize import nnls

from rtface.au.basis import DEFAULT_PATH, load_au_basis
from rtface.errors import DataError

REQUIRED = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU17",
            "AU20", "AU23", "AU24", "AU25", "AU26", "AU28", "AU43")

# MediaPipe 478-landmark ids by region (subject's left/right both included).
BROW_INNER = {107, 66, 65, 55, 105, 336, 296, 295, 285, 334, 52, 282, 9, 8, 151}
BROW_OUTER = {70, 63, 105, 53, 46, 66, 52, 300, 293, 334, 283, 276, 296, 282}
UPPER_LID = {159, 158, 157, 160, 161, 386, 385, 384, 387, 388, 246, 466, 173, 398, 27, 257, 28, 258, 29, 259,
             56, 286, 247, 467, 30, 260}
LOWER_LID = {145, 144, 153, 154, 163, 374, 373, 380, 381, 390, 7, 249, 23, 253, 22, 252, 24, 254, 110, 339,
             117, 118, 346, 347, 111, 340, 31, 261, 228, 448, 229, 449, 230, 450}  # lid margin + infraorbital skin
# nose alae, nasolabial region and the cheek next to the nose (AU09 nose wrinkler, AU10 upper-lip raiser)
NOSE_NASOLABIAL = {129, 358, 102, 331, 203, 423, 206, 426, 36, 266, 142, 371, 209, 429, 49, 279, 48, 278, 98, 327,
                   64, 294, 219, 439, 217, 437, 198, 420, 100, 329, 101, 330, 205, 425, 216, 436, 165, 391, 92, 322}
MOUTH_CORNERS = {61, 291, 76, 306, 62, 292, 78, 308, 146, 375, 185, 409, 184, 408, 77, 307, 57, 287, 186, 410,
                 43, 273, 95, 324, 191, 415}
UPPER_LIP = {0, 37, 267, 39, 269, 40, 270, 11, 12, 72, 302, 38, 268, 41, 271, 13, 82, 312, 81, 311, 80, 310}
LOWER_LIP = {17, 84, 314, 181, 405, 91, 321, 14, 87, 317, 178, 402, 88, 318, 15, 86, 316, 16, 85, 315, 146, 375}
# lateral to / below the mouth corners (buccinator dimple of AU14)
DIMPLE = MOUTH_CORNERS | {43, 273, 202, 422, 106, 335, 204, 424, 194, 418, 57, 287, 212, 432, 214, 434, 210, 430}
CHIN = {18, 83, 313, 200, 199, 175, 152, 201, 421, 208, 428, 182, 406, 17, 84, 314, 16, 85, 315}
JAW_OPEN = LOWER_LIP | CHIN

# AU -> (region its top-5 landmarks must fall in (at least 4 of 5), human label)
TOP5 = {
    "AU01": (BROW_INNER, "inner brows"), "AU02": (BROW_OUTER, "outer brows"), "AU04": (BROW_INNER, "inner brows"),
    "AU05": (UPPER_LID, "upper lids"), "AU43": (UPPER_LID, "upper lids"), "AU07": (LOWER_LID, "lower lids"),
    "AU12": (MOUTH_CORNERS, "mouth corners"), "AU14": (DIMPLE, "mouth corners / dimple"),
    "AU09": (NOSE_NASOLABIAL, "nose / nasolabial"), "AU10": (NOSE_NASOLABIAL | UPPER_LIP, "nasolabial / upper lip"),
    "AU15": (MOUTH_CORNERS, "mouth corners"), "AU23": (UPPER_LIP, "upper lip"), "AU28": (UPPER_LIP, "upper lip"),
    "AU24": (LOWER_LIP, "lower lip"), "AU25": (UPPER_LIP | LOWER_LIP, "inner lips"),
    "AU26": (JAW_OPEN, "lower lip / chin"), "AU17": (CHIN, "chin"),
}
# Looser checks (see report.md): the named region must carry at least `frac` of the column's largest landmark
# displacement. AU06 comes from a real smile's eye region (largest at the brows and lids, see
# test_au06_is_not_a_second_au12); AU10's geometric column raises the nasolabial region more than the lip
# vermilion (FACSHuman morph).
CHEEK = {147, 376, 137, 366, 123, 352, 117, 346, 118, 347, 119, 348, 50, 280, 101, 330, 100, 329, 36, 266, 205, 425,
         187, 411, 116, 345, 111, 340, 31, 261, 228, 448, 229, 449, 230, 450, 231, 451, 232, 452}
REGION_SHARE = {"AU06": (UPPER_LID | LOWER_LID | CHEEK, 0.9), "AU10": (UPPER_LIP, 0.3),
                "AU20": (MOUTH_CORNERS, 0.8)}


@pytest.fixture(scope="module")
def basis():
    return load_au_basis()


def test_names_shapes_finite(basis) -> None:
    assert set(REQUIRED) <= set(basis.names)
    k = len(basis.names)
    assert basis.basis.shape == (k, 478, 3) and basis.basis.dtype == np.float32
    assert basis.matrix.shape == (478 * 3, k) and basis.matrix.dtype == np.float64
    assert basis.unit_to_facs.shape == (k,)
    assert np.all(np.isfinite(basis.basis)) and np.all(np.isfinite(basis.unit_to_facs))
    assert np.all(basis.unit_to_facs > 0)
    assert np.all(np.linalg.norm(basis.matrix, axis=0) > 1e-3)      # no all-zero column (cm)
    assert np.array_equal(basis.matrix[:, 3], basis.basis[3].reshape(-1).astype(np.float64))
    assert np.all(basis.basis[:, 468:] == 0)                         # iris rows carry nothing
    assert basis.meta["targets"]["AU26"].endswith("03/26")
    assert load_au_basis() is basis                                  # cached


def test_unilateral_mode_replaces_not_adds() -> None:
    uni = load_au_basis(bilateral_only=False)
    bil = load_au_basis()
    assert "AU12_L" in uni.names and "AU12_R" in uni.names and "AU12" not in uni.names
    assert "AU26" in uni.names and not any(n.endswith("_L") for n in bil.names)
    for n in uni.names:
        base = n.split("_")[0]
        assert base in bil.names
        assert not (n != base and base in uni.names)                # never bilateral + unilateral of one AU
    m = uni.matrix[:468 * 3]
    assert np.isfinite(np.linalg.cond(m))
    # L and R are mirror images: the L column's largest motion is on the subject's left (+x)
    from rtface.geometry.canonical_model import load_canonical_model
    x = load_canonical_model().vertices_cm[:, 0]
    for n in ("AU12", "AU01", "AU43"):
        left = np.linalg.norm(uni.basis[uni.names.index(n + "_L")], axis=1)
        assert x[np.argmax(left)] > 0.5, n


@pytest.mark.parametrize("au", sorted(TOP5))
def test_anatomy_top5(basis, au: str) -> None:
    region, label = TOP5[au]
    mag = np.linalg.norm(basis.basis[basis.names.index(au)], axis=1)
    top = [int(i) for i in np.argsort(-mag)[:5]]
    inside = sum(i in region for i in top)
    assert inside >= 4, f"{au}: top-5 landmarks {top}, only {inside} in the {label}"


@pytest.mark.parametrize("au", sorted(REGION_SHARE))
def test_anatomy_region_share(basis, au: str) -> None:
    region, frac = REGION_SHARE[au]
    mag = np.linalg.norm(basis.basis[basis.names.index(au)], axis=1)
    assert mag[sorted(region)].max() >= frac * mag.max(), au


def test_au06_is_not_a_second_au12(basis) -> None:
    """AU06 (from a real smile's lids and cheeks) does not move the mouth: a smile's mouth corners stay AU12's; nor
    the brows, which are AU01/AU02/AU04's (solved in their own region)."""
    from rtface.geometry.canonical_model import load_canonical_model
    y = load_canonical_model().vertices_cm[:, 1]
    mag = np.linalg.norm(basis.basis[basis.names.index("AU06")], axis=1)
    assert mag[y < y[2]].max() == 0.0 and mag[sorted(MOUTH_CORNERS)].max() == 0.0
    assert mag[sorted(BROW_INNER | BROW_OUTER)].max() == 0.0
    assert mag[sorted(UPPER_LID | LOWER_LID)].max() > 0.01


def test_nnls_recovers_random_combinations(basis) -> None:
    m = basis.matrix
    rng = np.random.default_rng(7)
    k = m.shape[1]
    for _ in range(50):
        a = np.where(rng.random(k) < 0.5, rng.uniform(0.05, 1.0, k), 0.0)
        got = nnls(m, m @ a)[0]
        assert np.all(np.abs(got - a) <= 0.05 * np.maximum(a, 0.2)), (a, got)


def test_condition_number_finite_and_reported(basis) -> None:
    s = np.linalg.svd(basis.matrix, compute_uv=False)
    cond = s[0] / s[-1]
    assert np.isfinite(cond) and cond < 1e3
    assert basis.meta["cond_bilateral"] == pytest.approx(cond, rel=1e-3)
    report = (DEFAULT_PATH.parent / "report.md").read_text()
    assert "Condition number" in report and f"{basis.meta['cond_bilateral']:.1f}" in report
    assert basis.meta["max_coherence"] < 0.8
    for f in ("NOTICE.md", "LICENSE-FACSHuman"):
        assert (DEFAULT_PATH.parent / f).is_file()


def test_missing_file_and_field_raise_dataerror(tmp_path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_au_basis(str(tmp_path / "nope.npz"))
    with np.load(DEFAULT_PATH) as z:
        fields = {k: z[k] for k in z.files if k != "unit_to_facs"}
    bad = tmp_path / "bad.npz"
    np.savez(bad, **fields)
    with pytest.raises(DataError, match=r"bad\.npz.*unit_to_facs"):
        load_au_basis(str(bad))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz"):
        load_au_basis(str(junk))
    copy = tmp_path / "copy.npz"
    shutil.copyfile(DEFAULT_PATH, copy)
    other = load_au_basis(str(copy))
    assert other.names == load_au_basis().names
    assert json.loads(json.dumps(other.meta))["script"] == "scripts/build_face_model.py"
