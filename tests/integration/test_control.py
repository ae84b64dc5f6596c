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
        "control": {"endpoint": ctl, "neutral_dir": str(tmp_path / "neutrals")},
        "stages": [{"kind": "landmarks", "max_faces": 1}, {"kind": "canonical", "calibrate_frames": 5}],
    })
    engine = Engine(cfg)
    ready = threading.Event()
    frames = []

    def run() -> None:
        for r in engine.results():
            frames.append(r)
            # the person model keeps a frame per 0.1 s of media time: calibrating from recent frames needs >= 5
            if len(frames) >= 10 and r.meta.t_media_ns >= 1.0e9:
                ready.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        assert ready.wait(30)
        assert send_command(ctl, "ping") == "pong"
        assert send_command(ctl, "calibrate_neutral") == {"calibrated_now": [0]}
        saved = send_command(ctl, "save_neutral", face_id=0, name="person0")
        path = tmp_path / "neutrals" / "person0.npz"
        assert saved == {"name": "person0", "path": str(path)}
        assert np.load(path)["neutral_cm"].shape == (478, 3)
        meta = send_command(ctl, "load_neutral", face_id=0, name="person0")
        assert "format_version" in meta and meta["face_id"] == "0"
        with pytest.raises(TransportError, match="already exists in the neutral folder"):
            send_command(ctl, "save_neutral", face_id=0, name="person0")
        assert send_command(ctl, "save_neutral", face_id=0, name="person0", overwrite=True)["name"] == "person0"
        with pytest.raises(TransportError, match="no neutral for face 7"):
            send_command(ctl, "save_neutral", face_id=7, name="x")
        assert sorted(p.name for p in path.parent.iterdir()) == ["person0.npz"]  # no temporary file left
        _attack_neutral_commands(ctl, tmp_path, path.parent)
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


def _attack_neutral_commands(ctl: str, tmp_path, folder) -> None:
    """Names only: no path leaves the neutral folder, nothing is overwritten, errors do not tell files apart."""
    victim = tmp_path / "victim.npz"
    victim.write_bytes(b"precious")
    for name in ("../victim", str(victim), "a/b", "..", ".hidden", "x" * 65, "", "a\\b", "c:x"):
        with pytest.raises(TransportError, match="invalid neutral name"):
            send_command(ctl, "save_neutral", face_id=0, name=name)
        with pytest.raises(TransportError, match="invalid neutral name"):
            send_command(ctl, "load_neutral", face_id=0, name=name)
    with pytest.raises(TransportError, match="not a 'path'"):
        send_command(ctl, "save_neutral", face_id=0, path=str(victim))
    (folder / "link.npz").symlink_to(victim)  # a link planted in the folder is replaced, never followed
    (folder / "dir.npz").mkdir()
    (folder / "junk.npz").write_bytes(b"not an npz")
    errors = set()
    for name in ("missing", "link", "dir", "junk"):
        with pytest.raises(TransportError) as ei:
            send_command(ctl, "load_neutral", face_id=0, name=name)
        errors.add(str(ei.value).replace(repr(name), "NAME"))
    assert len(errors) == 1 and "no valid neutral file of that name" in errors.pop()
    with pytest.raises(TransportError, match="already exists"):
        send_command(ctl, "save_neutral", face_id=0, name="link")
    send_command(ctl, "save_neutral", face_id=0, name="link", overwrite=True)
    assert victim.read_bytes() == b"precious" and not (folder / "link.npz").is_symlink()
