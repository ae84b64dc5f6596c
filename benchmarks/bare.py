"""The bare reference a new user would write: ``cv2`` + MediaPipe FaceMesh (refine_landmarks), nothing else.

``python benchmarks/bare.py video V``: every frame of V through FaceMesh in one thread (tracking mode).
``python benchmarks/bare.py photo P``: one image through FaceMesh in static-image mode.
Prints one JSON line: frames, faces found, in-process wall seconds (imports excluded). The whole-process time is
what the caller (benchmarks/bench_process.py) measures.
"""
from __future__ import annotations

import json
import sys
import time

import cv2
import mediapipe as mp


def video(path: str, max_faces: int = 4) -> dict:
    t0 = time.perf_counter()
    mesh = mp.solutions.face_mesh.FaceMesh(max_num_faces=max_faces, refine_landmarks=True)
    cap = cv2.VideoCapture(path)
    n = faces = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        res = mesh.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        n += 1
        faces += len(res.multi_face_landmarks or [])
    mesh.close()
    return {"frames": n, "faces": faces, "wall_s": time.perf_counter() - t0}


def photo(path: str, max_faces: int = 4) -> dict:
    t0 = time.perf_counter()
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=max_faces, refine_landmarks=True)
    res = mesh.process(cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB))
    mesh.close()
    return {"frames": 1, "faces": len(res.multi_face_landmarks or []), "wall_s": time.perf_counter() - t0}


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    print(json.dumps({"video": video, "photo": photo}[mode](path)))
