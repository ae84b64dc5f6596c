"""The 68 iBUG (300-W / dlib / OpenFace) face points, derived from the MediaPipe mesh by a fixed correspondence.

Each iBUG point i (0-based, OpenFace's ``x_i``/``y_i`` numbering) is the mean of one or two MediaPipe mesh points
(``IBUG68_FROM_MESH[i]``). The correspondence is the one published by Peizhi Yan (2024, "Mediapipe to Dlib Face
Landmarks Convertion", github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks), re-tabulated here. iBUG's image-left
points (0-8 jaw, 17-21 brow, 36-41 eye, ...) are the subject's right.

How close (measured, ``scripts/measure_ibug68.py``): against dlib's 68-point predictor (face_recognition_models
0.3.0, dlib-bin 20.0.1) on the 24 London Set photos in tests/data (12 neutral, 12 smiling), the mean distance is
0.047 x the inter-ocular distance (neutral 0.047, smiling 0.047); by region jaw 0.080, brows 0.065, nose 0.040,
eyes 0.022, outer lip 0.032, inner lip 0.025. Jaw points are the least exact: iBUG's jaw follows the visible
outline, which moves over the skin as the head turns, while a mesh point stays on the skin.

Pure functions; any thread.
"""
from __future__ import annotations

import numpy as np

IBUG68_FROM_MESH: tuple[tuple[int, ...], ...] = (
    # jaw 0-16 (image left to image right)
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,), (400,), (379,), (365,),
    (397, 288), (361,), (323,), (454,), (356,),
    # brows 17-21 (image left), 22-26 (image right)
    (70,), (63,), (105,), (66,), (107,), (336,), (296,), (334,), (293,), (300,),
    # nose bridge 27-30, nostrils 31-35
    (168, 6), (197, 195), (5,), (4,), (75,), (97,), (2,), (326,), (305,),
    # eyes 36-41 (image left), 42-47 (image right), each from the outer/inner corner clockwise
    (33,), (160,), (158,), (133,), (153,), (144,), (362,), (385,), (387,), (263,), (373,), (380,),
    # outer lip 48-59, inner lip 60-67
    (61,), (39,), (37,), (0,), (267,), (269,), (291,), (321,), (314,), (17,), (84,), (91,),
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),
)
N_IBUG = 68

# (68, 478) averaging matrix: ibug = W @ mesh
_W = np.zeros((N_IBUG, 478), np.float32)
for _i, _ids in enumerate(IBUG68_FROM_MESH):
    _W[_i, list(_ids)] = 1.0 / len(_ids)
_W.flags.writeable = False


def ibug68(mesh: np.ndarray) -> np.ndarray:
    """(68, D) iBUG points from (478, D) (or (468, D)) mesh points, any D; same dtype as float32/float64 input."""
    mesh = np.asarray(mesh)
    w = _W[:, :mesh.shape[0]]
    return (w.astype(mesh.dtype, copy=False) if mesh.dtype == np.float64 else w) @ mesh
