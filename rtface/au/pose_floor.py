"""Which head pose the AU stage's pose floor is indexed by: the distance from the pose the person's neutral was
learned at, while the head holds still (owner: the AU stage, :mod:`rtface.stages.aus`).

The face model's pose residual (what its population pose response gets wrong for one person) is modelled as linear
in the angle (:meth:`rtface.facemodel.population.PopulationModel.pose_residual_axis_scales`: |angle| / 30 deg). A
person's online neutral learned at pose ``p0`` already holds that person's residual at ``p0``
(:attr:`rtface.facemodel.person.PersonShape.rest_pose_deg`, scaled by how much of it the estimate has absorbed),
so at pose ``p`` what is left is the residual of ``p - p0``: a face held at 30 deg of yaw in front of a bedside
camera should not keep the floors of a face turned 30 deg away from its neutral.

Only while the head holds still. Measured (scripts/validate_aus.py, 2026-12-03): counting from the rest pose at all
times raised the mean AU sum of rendered neutral faces moving through yaw +/-40 deg in 4 s from 0.62 to 1.02,
pitch +/-25 deg from 1.99 to 2.45 and distance 36-70 cm from 1.81 to 2.41 (MediaPipe's landmarks lag a turning or
approaching face; the floor of the absolute pose was covering that), so the share of the rest pose taken off falls
from 1 to 0 as the low-passed turning speed goes from ``STEADY_DEG_S`` to ``TURNING_DEG_S`` or the approach rate
from ``STEADY_RATE`` to ``MOVING_RATE``. With the gate (and the pose floor's unit simulated below the solver's
bound, FloorModel): moving faces 0.58 / 1.74 / 1.06 / 1.81 (turning / nodding / tilting / distance; before
0.62 / 1.99 / 1.12 / 1.81), held-back renders at their own pose AU07 full-weight 0.4 -> 2.0, AU24 0.0 -> 1.1.
The same low-passed rotation speeds scale the turning floor (the face model's ``turn_floor_gain``, measured by
scripts/face_model/turning.py): MediaPipe's lag is largest where the pose floor is smallest, crossing frontal at
full speed. Pure functions; the AU stage keeps the per-face state.
"""
from __future__ import annotations

import math

STEADY_DEG_S = 10.0  # low-passed turning speed (deg/s, largest axis) below which the rest pose counts in full
TURNING_DEG_S = 20.0  # ... and above which it does not count at all
STEADY_RATE = 0.1  # |approach rate| (1/s) below which the rest pose counts in full
MOVING_RATE = 0.3  # ... and above which it does not count at all
TURN_TAU_S = 0.3  # low-pass time constant of the turning speed, s of media time


def _ramp(x: float, full: float, none: float) -> float:
    return min(1.0, max(0.0, (none - x) / (none - full)))


def turning_speeds(prev: tuple[float, tuple[float, float, float], tuple[float, float, float]] | None, t_s: float,
                   pose_deg: tuple[float, float, float]) -> tuple[float, float, float]:
    """Low-passed rotation speed per axis (deg/s: |d yaw|, |d pitch|, |d roll| per s) after a frame at ``t_s`` with
    ``pose_deg``, from the previous state ``(t s, pose deg, speeds)`` (None: zeros); a gap of more than 0.5 s keeps
    the previous speeds. The largest is the turning speed of :func:`steady_share`; each is the speed the AU stage's
    turning floor scales with (:mod:`rtface.stages.aus`)."""
    if prev is None:
        return (0.0, 0.0, 0.0)
    dt = t_s - prev[0]
    if not 0.0 < dt <= 0.5:
        return prev[2]
    a = 1.0 - math.exp(-dt / TURN_TAU_S)
    return tuple(s + a * (abs(x - x0) / dt - s)  # type: ignore[return-value]
                 for x, x0, s in zip(pose_deg, prev[1], prev[2]))


def steady_share(speed_deg_s: float, approach_rate: float) -> float:
    """0-1: how much of the rest pose to take off the current pose (1 = the head holds still)."""
    return min(_ramp(speed_deg_s, STEADY_DEG_S, TURNING_DEG_S), _ramp(abs(approach_rate), STEADY_RATE, MOVING_RATE))


def floor_pose(pose_deg: tuple[float, float, float], rest_deg: tuple[float, float, float] | None,
               share: float) -> tuple[float, float, float]:
    """The pose (yaw, pitch, roll deg) to index the pose floor by: ``pose - share x rest`` (``rest`` None: pose)."""
    if rest_deg is None or share <= 0.0:
        return tuple(float(a) for a in pose_deg)  # type: ignore[return-value]
    return tuple(float(a - share * b) for a, b in zip(pose_deg, rest_deg))  # type: ignore[return-value]
