"""Render a head under an arbitrary head pose, distance, focal length and image position (build-time only).

World = camera-centred: x right, y up, z towards the camera (the renderer's convention); the camera sits at
z = distance and looks down -z. The head (mesh units) is rotated about its pivot by yaw (about y), pitch (about x)
and roll (about z), scaled to cm if needed and placed at (x, y) in front of the camera. Rendering: the NumPy
z-buffer of scripts/au_basis/render.py with a square image of ``size`` px and focal ``focal_px``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from au_basis.hm08 import Hm08Head
from au_basis.render import Camera, render


@dataclass(frozen=True)
class Scene:
    """One rendering condition. Angles in degrees; positions in the head's mesh units; light x right, y up, z cam."""
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    roll_deg: float = 0.0
    distance: float = 50.0      # camera to head pivot along the optical axis (mesh units)
    x: float = 0.0              # lateral head position (mesh units, world x)
    y: float = 0.0              # vertical head position (mesh units, world y)
    focal_px: float = 1000.0
    size: int = 640
    light: tuple[float, float, float] = (0.3, 0.4, 1.0)


def head_rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """R = Rz(roll) @ Ry(yaw) @ Rx(pitch) in world axes (x right, y up, z to camera)."""
    y, p, r = np.deg2rad([yaw_deg, pitch_deg, roll_deg])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def place(verts: np.ndarray, head: Hm08Head, scene: Scene) -> np.ndarray:
    """Mesh vertices -> world vertices for the scene (pivot = the head's camera target)."""
    pivot = np.asarray(head.cam_target, dtype=np.float64)
    rot = head_rotation(scene.yaw_deg, scene.pitch_deg, scene.roll_deg)
    return (verts - pivot) @ rot.T + np.array([scene.x, scene.y, 0.0])


def render_scene(head: Hm08Head, verts: np.ndarray, scene: Scene, return_ids: bool = False):
    """RGB uint8 (size, size, 3) of ``verts`` (the head's vertices, possibly deformed) under ``scene``."""
    world = place(verts, head, scene)
    cam = Camera(size=scene.size, focal=scene.focal_px, distance=scene.distance, target=(0.0, 0.0, 0.0))
    return render(world, head.base, head.tris, head.tri_mat, head.two_sided, head.paint, cam,
                  np.asarray(scene.light, dtype=np.float64), return_ids=return_ids)
