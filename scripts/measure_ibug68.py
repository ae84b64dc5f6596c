"""How close the mesh-derived iBUG 68 points (rtface.landmarking.ibug68) are to dlib's 68-point predictor.

Not a dependency of rtface: run it in a venv that also has ``dlib-bin`` and ``face-recognition-models`` (which ships
dlib's 68-point model), e.g. ``pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0``.

    python scripts/measure_ibug68.py [image folders ...]   (default: the London Set photos in tests/data)

Prints the mean point distance in units of dlib's inter-ocular distance (eye centres), per folder and per region.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REGIONS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48),
           "outer lip": range(48, 60), "inner lip": range(60, 68)}


def main(folders: list[Path]) -> None:
    import dlib
    import face_recognition_models

    from rtface.landmarking.ibug68 import ibug68
    from rtface.records import FrameMeta, FrameResult
    from rtface.stages.landmarks import LandmarkParams, LandmarkStage

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    stage = LandmarkStage("landmarks", LandmarkParams(static_image=True, max_faces=1))
    stage.open()
    all_err = []
    try:
        for folder in folders:
            errs = []
            for path in sorted(folder.glob("*.jpg")) + sorted(folder.glob("*.png")):
                bgr = cv2.imread(str(path))
                result = FrameResult(FrameMeta(0, 0, 0, bgr.shape[1], bgr.shape[0]))
                stage.process(bgr, result)
                rects = detector(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 1)
                if not result.faces or not rects:
                    print(f"  {path.name}: no face for {'MediaPipe' if not result.faces else 'dlib'}, skipped")
                    continue
                rect = max(rects, key=lambda r: r.area())
                shape = predictor(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), rect)
                ref = np.array([[p.x, p.y] for p in shape.parts()], float)
                ours = ibug68(result.faces[0].landmarks_px[:, :2].astype(np.float64))
                iod = np.linalg.norm(ref[36:42].mean(0) - ref[42:48].mean(0))
                errs.append(np.linalg.norm(ours - ref, axis=1) / iod)
            e = np.array(errs)
            all_err.append(e)
            print(f"{folder}: {len(e)} faces, mean {e.mean():.3f} x IOD")
    finally:
        stage.close()
    e = np.concatenate(all_err)
    print(f"all: {len(e)} faces, mean {e.mean():.3f} x IOD; " +
          ", ".join(f"{k} {e[:, list(r)].mean():.3f}" for k, r in REGIONS.items()))


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:]]
    london = ROOT / "tests" / "data" / "faces" / "london"
    main(args or [london / "neutral", london / "smiling"])
