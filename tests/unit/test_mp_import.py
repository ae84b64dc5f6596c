"""The lean MediaPipe import (rtface.landmarking.mp_import) in a fresh interpreter: the legacy solutions work
without matplotlib and the Tasks API being imported, and a later plain ``import mediapipe`` still gives the full
package (solutions' drawing helpers, Tasks, version)."""
from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
from rtface.landmarking.mp_import import solutions
s = solutions()
assert "matplotlib" not in sys.modules and "mediapipe.tasks" not in sys.modules, sorted(sys.modules)[:5]
mesh = s.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True)
import cv2
img = cv2.cvtColor(cv2.imread(sys.argv[1]), cv2.COLOR_BGR2RGB)
assert len(mesh.process(img).multi_face_landmarks[0].landmark) == 478
import mediapipe as mp
assert mp.solutions.face_mesh.FaceMesh is s.face_mesh.FaceMesh
assert callable(mp.solutions.drawing_utils.draw_landmarks) and mp.tasks.vision.FaceLandmarker
assert mp.__version__ == "0.10.21" and mp.Image is not None
print("ok")
"""


def test_lean_import_then_full_package(data_dir):
    p = subprocess.run([sys.executable, "-c", CODE, str(data_dir / "faces" / "misc" / "single_face.jpg")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]
