"""Control channel against a running engine: calibrate, save and load a person's neutral, stats, stop."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.conftest import free_port
from rtface.config import config_from_dict
from rtface.errors import TransportError
from rtface.graph.runner import Engine
from rtface.transport.control import send_command


def test_neutral_commands_on_a_running_engine(tmp_path):
    ctl = f"tcp://127.0.0.1:{free_port()}"
    cfg = config_from_dict({
        "source": {"spec": "sample", "realtime": True, "loop": True},
        "publish": {"enabled": False},
        "control": {"endpoint": ctl},
        "stages": [{"kind": "landmarks", "max_faces": 1}, {"kind": "canonical", "calibrate_frames": 5}],
    })
    engine = Engine(cfg)
    ready = threading.Event()
    frames = []

    def run() -> None:
        for r in engine.results():
            frames.append(r)
            if len(frames) >= 10:
                ready.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        assert ready.wait(30)
        assert send_command(ctl, "ping") == "pong"
        assert send_command(ctl, "calibrate_neutral") == {"calibrated_now": [0]}
        path = tmp_path / "person0.npz"
        assert send_command(ctl, "save_neutral", face_id=0, path=str(path)) == str(path)
        saved = np.load(path)
        assert saved["neutral_cm"].shape == (478, 3)
        meta = send_command(ctl, "load_neutral", face_id=0, path=str(path))
        assert "format_version" in meta or meta  # metadata comes back
        with pytest.raises(TransportError, match="no neutral for face 7"):
            send_command(ctl, "save_neutral", face_id=7, path=str(tmp_path / "x.npz"))
        with pytest.raises(TransportError, match="unknown command"):
            send_command(ctl, "reboot")
        stats = send_command(ctl, "stats")
        assert stats["frames"] >= 10
        n_before = len(frames)
        assert send_command(ctl, "stop") == "stopping"
        t.join(10)
        assert not t.is_alive()
        later = [f.faces[0].neutral_ready for f in frames[n_before:] if f.faces]
        assert all(later)
    finally:
        engine.stop()
        t.join(10)
