"""Offline gaze-on-face mapping of a whole recording: align, hit-test per frame, label (caller's thread).

``faces_by_frame`` maps a scene-frame index to that frame's faces as (face_id, landmarks_px) pairs, e.g. collected
from the landmark stage while playing the recording's scene video. With ``interpolate=True`` each sample uses the
landmarks interpolated linearly in time between its frame and the bracketing neighbour frame, when that frame
holds the same face id (otherwise the frame's own landmarks).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from rtface.gaze.align import assign_frames, interpolate_landmarks, neighbour_weights
from rtface.gaze.aoi import OFF_FACE, OFF_IMAGE, AOIConfig, build_geometry, hit_matrix, label_hits
from rtface.gaze.track import GazeTrack

FaceList = list[tuple[int, np.ndarray]]


@dataclass
class GazeMapping:
    """One row per gaze sample (the content of merged_data.csv)."""

    t_ns: np.ndarray  # (N,) int64 gaze time (gaze clock)
    frame_index: np.ndarray  # (N,) int64, -1 = outside the scene span
    frame_t_ns: np.ndarray  # (N,) int64 time of that frame (scene clock), -1 when none
    x_px: np.ndarray
    y_px: np.ndarray
    face_id: np.ndarray  # (N,) int64, -1 = no face hit
    labels: list[str]  # exclusive: one name; multi: names joined with "|"
    aoi_names: tuple[str, ...]  # AOI column order (priority order)
    aoi_hits: np.ndarray  # (N, A) bool: AOI hit on the chosen face (multi) / the one label (exclusive)
    mode: str

    @property
    def columns(self) -> list[str]:
        """AOI names plus off_face and off_image: every label a sample can get."""
        return list(self.aoi_names) + [OFF_FACE, OFF_IMAGE]

    def indicator(self) -> np.ndarray:
        """(N, len(columns)) uint8 0/1: AOI hits, then off_face, off_image."""
        off_img = np.array([lab == OFF_IMAGE for lab in self.labels], dtype=bool)
        off_face = np.array([lab == OFF_FACE for lab in self.labels], dtype=bool)
        return np.column_stack([self.aoi_hits, off_face, off_img]).astype(np.uint8)


def map_track(track: GazeTrack, faces_by_frame: Mapping[int, FaceList], cfg: AOIConfig, offset_ns: int = 0,
              align_mode: str = "nearest", interpolate: bool = False) -> GazeMapping:
    """Map every sample of ``track`` onto the faces of its scene frame."""
    n = len(track)
    fidx = assign_frames(track.t_ns, track.frame_t_ns, offset_ns, align_mode)
    names = cfg.names
    face_id = np.full(n, -1, dtype=np.int64)
    labels = [OFF_FACE] * n
    aoi_hits = np.zeros((n, len(names)), dtype=bool)
    off_image = track.off_image
    other, alpha = neighbour_weights(track.t_ns, fidx, track.frame_t_ns, offset_ns) if interpolate else (None, None)
    for k in np.unique(fidx):
        sel = np.nonzero(fidx == k)[0]
        faces = faces_by_frame.get(int(k), []) if k >= 0 else []
        if interpolate and faces:
            groups = [(sel[i:i + 1], _blend(faces, faces_by_frame, int(other[j]), float(alpha[j])))
                      for i, j in enumerate(sel)]
        else:
            groups = [(sel, faces)]
        for idx, fl in groups:
            geo = build_geometry(fl, cfg)
            hits = hit_matrix(track.x_px[idx], track.y_px[idx], geo, None, cfg.use_numba)
            fid, labs, aidx = label_hits(hits, geo, cfg.mode, off_image[idx])
            face_id[idx] = fid
            for j, lab in zip(idx, labs):
                labels[j] = lab
            if cfg.mode == "exclusive":
                rows = np.nonzero(aidx >= 0)[0]
                aoi_hits[idx[rows], aidx[rows]] = True
            elif geo.kind.shape[0]:
                for r, j in enumerate(idx):
                    if fid[r] >= 0:
                        f = int(np.nonzero(geo.face_ids == fid[r])[0][0])
                        aoi_hits[j] = hits[r, f]
    ft = np.where(fidx >= 0, track.frame_t_ns[np.clip(fidx, 0, max(len(track.frame_t_ns) - 1, 0))], -1) \
        if len(track.frame_t_ns) else np.full(n, -1, dtype=np.int64)
    return GazeMapping(track.t_ns.copy(), fidx, ft.astype(np.int64), track.x_px.copy(), track.y_px.copy(), face_id,
                       labels, names, aoi_hits, cfg.mode)


def _blend(faces: FaceList, faces_by_frame: Mapping[int, FaceList], other: int, alpha: float) -> FaceList:
    if other < 0 or alpha == 0.0:
        return faces
    nb = {fid: lm for fid, lm in faces_by_frame.get(other, [])}
    return [(fid, interpolate_landmarks(lm, nb[fid], alpha) if fid in nb else lm) for fid, lm in faces]
