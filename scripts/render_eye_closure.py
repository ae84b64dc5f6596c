#!/usr/bin/env python
"""Render the MakeHuman head with FACSHuman's AU43 (eyes closed) at known weights, for the eye-closure tests.

Reuses the AU-basis renderer (scripts/au_basis: hm08 loader, NumPy z-buffer renderer, frontal view and light of the
basis build). Writes tests/data/faces/rendered_au43/au43_<w>.png (both eyes), au43L_1.00.png / au43R_1.00.png
(subject's left / right eye only), cropped to the face (480 x 480 px). Licences: FACSHuman targets LGPL-3.0,
MakeHuman hm08 mesh CC0 (tests/data/README.md).

Usage (from the repo root): python scripts/render_eye_closure.py --shared ../shared/data
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from au_basis.hm08 import load_hm08  # noqa: E402
from au_basis.measure import VIEWS, _init, render_job  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
CROP = (slice(80, 560), slice(80, 560))  # rows, cols of the 640 x 640 render holding the face


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "data" / "faces" / "rendered_au43")
    args = ap.parse_args(argv)
    head = load_hm08(args.shared / "au_sources" / "facshuman")
    _init(head, VIEWS)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(f"au43_{w:.2f}.png", ((("01/43", w),) if w else ())) for w in WEIGHTS]
    jobs += [("au43L_1.00.png", (("01/L43", 1.0),)), ("au43R_1.00.png", (("01/R43", 1.0),))]
    for name, combo in jobs:
        rgb = render_job((0, combo), head)
        cv2.imwrite(str(args.out / name), cv2.cvtColor(rgb[CROP], cv2.COLOR_RGB2BGR))
        print("wrote", args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
