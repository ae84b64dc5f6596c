#!/usr/bin/env python
"""Render and detect the face-model build's image sets; writes one npz cache per set (raw MediaPipe landmarks in px
plus every sample's parameters). Camera-model independent: the fit step maps landmarks with the runtime geometry.

Usage: python scripts/render_face_sets.py --shared ../shared/data --cache build/face_sets [--sets a,b]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from au_basis.hm08 import load_hm08  # noqa: E402
from face_model import sets as S  # noqa: E402
from face_model.heads import load_ict_identity  # noqa: E402
from face_model.population import run_samples, samples_to_arrays  # noqa: E402
from face_model.transfer import transfer_identity  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def define_sets(hm_unit: float = 0.1) -> dict[str, tuple[str, list]]:
    """name -> (head 'hm08' | 'ict', samples)."""
    out = {}
    rng = np.random.default_rng(100)
    ids = S.identities(101, 12, first_zero=True)
    out["hm_build"] = ("hm08", S.expression_set(ids, [S.build_scenes(rng, hm_unit) for _ in ids],
                                                list(S.FACSHUMAN.values()),
                                                [t for p in S.FACSHUMAN_LR.values() for t in p]))
    rng = np.random.default_rng(200)
    ids = S.identities(201, 8, first_zero=True)
    out["ict_build"] = ("ict", S.expression_set(ids, [S.build_scenes(rng, 1.0) for _ in ids], list(S.ICT),
                                                list(S.ICT_LR)))
    rng = np.random.default_rng(300)
    ids = S.identities(301, 6)
    out["hm_heldback"] = ("hm08", S.validation_set(ids, [S.heldback_scenes(rng, hm_unit) for _ in ids],
                                                   list(S.FACSHUMAN.values()), rng))
    rng = np.random.default_rng(400)
    ids = S.identities(401, 8)
    out["ict_heldback"] = ("ict", S.validation_set(ids, [S.heldback_scenes(rng, 1.0) for _ in ids],
                                                   ["cheekSquint", "eyeBlink", "mouthSmile", "browInnerUp",
                                                    "browDown", "jawOpen"], rng, n_combos=2))
    rng = np.random.default_rng(500)
    out["hm_population"] = ("hm08", S.population_set(S.identities(501, 100), rng, hm_unit))
    rng = np.random.default_rng(600)
    out["ict_population"] = ("ict", S.population_set(S.identities(601, 140), rng, 1.0))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=REPO / "build" / "face_sets")
    ap.add_argument("--sets", default="", help="comma-separated set names (default: all missing ones)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    src = args.shared / "au_sources"
    ict, ident = load_ict_identity(src / "ict_facekit")
    hm = load_hm08(src / "facshuman")
    hm_ident = transfer_identity(ict, ident, hm)
    heads = {"hm08": (hm, hm_ident), "ict": (ict, ident)}
    wanted = [s for s in args.sets.split(",") if s]
    for name, (head, samples) in define_sets().items():
        out = args.cache / f"{name}.npz"
        if (wanted and name not in wanted) or (not wanted and out.is_file()):
            continue
        t0 = time.time()
        print(f"{name}: {len(samples)} renders on {head}", flush=True)
        h, idm = heads[head]
        lm, found = run_samples(h, idm, samples, workers=args.workers, log=lambda m: print(m, flush=True))
        np.savez_compressed(out, lm=lm, found=found, head=np.array(head), **samples_to_arrays(samples))
        print(f"{name}: {int(found.sum())}/{len(samples)} faces in {time.time() - t0:.0f} s -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
