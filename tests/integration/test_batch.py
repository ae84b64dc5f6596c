"""`rtface batch` through the real CLI and real worker processes on real videos and photos: one table and session
summary per input, resume after an interrupt, retries of failed inputs (a truncated video, a killed worker), and
the seams of a chunked video."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rtface.output.tables import read_results
from tests.conftest import MISC, SAMPLE_VIDEO

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, GLOG_minloglevel="2")


def batch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtface", "batch", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV, cwd=ROOT)


def manifest(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture()
def inputs(tmp_path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(SAMPLE_VIDEO, d / name)
    return d


def test_batch_folder_and_photo_each_get_a_table_and_a_rerun_skips_them(inputs, tmp_path):
    out = tmp_path / "out"
    p = batch(str(inputs), str(MISC / "single_face.jpg"), "--out", str(out), "--workers", "2")
    assert p.returncode == 0, p.stderr
    assert "3/3 input(s) done, 0 failed" in p.stderr and "frames |" in p.stderr  # progress line and report
    for name, frames in (("a", 72), ("b", 72), ("single_face", 1)):
        t = read_results(out / f"{name}.parquet")
        assert t.column("frame").to_pylist() == list(range(frames))
        assert (t.column("success").to_numpy() == 1).all()
        assert (out / f"{name}_session.json").exists() and (out / f"{name}_session.csv").exists()
    recs = manifest(out)
    assert sorted(r["job"] for r in recs) == ["a", "b", "single_face"] and {r["status"] for r in recs} == {"done"}
    mtimes = {q.name: q.stat().st_mtime_ns for q in out.glob("*.parquet")}
    again = batch(str(inputs), str(MISC / "single_face.jpg"), "--out", str(out))
    assert again.returncode == 0 and "(0 to run, 3 input(s) already done)" in again.stderr
    assert {q.name: q.stat().st_mtime_ns for q in out.glob("*.parquet")} == mtimes
    os.utime(inputs / "a.mp4")  # a changed input runs again
    third = batch(str(inputs), "--out", str(out))
    assert third.returncode == 0 and "(1 to run, 1 input(s) already done)" in third.stderr


def test_a_rerun_from_another_working_directory_skips_what_is_done(tmp_path):
    """The manifest finds finished outputs whatever the working directory: `--out out` from one folder, then the same
    folder given as an absolute path from another."""
    (tmp_path / "a").mkdir()
    photo = str(MISC / "single_face.jpg")
    first = subprocess.run([sys.executable, "-m", "rtface", "batch", photo, "--out", "out", "--workers", "1"],
                           capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path / "a")
    assert first.returncode == 0, first.stderr
    again = subprocess.run([sys.executable, "-m", "rtface", "batch", photo, "--out", str(tmp_path / "a" / "out")],
                           capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path)
    assert again.returncode == 0 and "(0 to run, 1 input(s) already done)" in again.stderr, again.stderr

def test_interrupted_batch_resumes_and_skips_finished_inputs(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        shutil.copy(SAMPLE_VIDEO, src / f"v{i}.mp4")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "rtface", "batch", str(src), "--out", str(out), "--workers",
                             "1", "--no-progress"], stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # interrupt once the first input is finished
        if (out / "manifest.jsonl").exists() and manifest(out):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    finished = {r["job"] for r in manifest(out) if r["status"] == "done"}
    assert 1 <= len(finished) < 4
    p = batch(str(src), "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert f"({4 - len(finished)} to run, {len(finished)} input(s) already done)" in p.stderr
    for i in range(4):
        assert read_results(out / f"v{i}.parquet").num_rows == 72


def test_failed_inputs_are_retried_and_reported_without_stopping_the_rest(inputs, tmp_path):
    data = SAMPLE_VIDEO.read_bytes()
    (inputs / "broken.mp4").write_bytes(data[: len(data) // 3])  # truncated: no moov atom
    out = tmp_path / "out"
    p = batch(str(inputs), "--out", str(out), "--workers", "2", "--retries", "1")
    assert p.returncode == 2, p.stderr
    assert "2/3 input(s) done, 1 failed" in p.stderr and "failed: broken:" in p.stderr
    report = json.loads((out / "batch_report.json").read_text())
    assert set(report["failed"]) == {"broken"} and report["done"] == 2
    (fail,) = [r for r in manifest(out) if r["status"] == "failed"]
    assert fail["job"] == "broken" and fail["attempts"] == 2 and "broken.mp4" in fail["error"]
    assert read_results(out / "a.parquet").num_rows == 72 and read_results(out / "b.parquet").num_rows == 72


def _worker_pids(out: Path) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"rtface.batch.worker" in cmd and str(out).encode() in cmd:
                pids.append(int(d.name))
    return pids


def test_a_killed_worker_is_replaced_and_its_input_retried(inputs, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "rtface", "batch", str(inputs), "--out", str(out),
                             "--workers", "1", "--retries", "1", "--no-progress"], stderr=subprocess.PIPE,
                            text=True, env=ENV, cwd=ROOT)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline:  # kill the worker once it is processing frames
        log = out / "logs" / "worker-0.log"
        part = list(out.glob("*.parquet.partial")) + list(out.glob("*_session.json"))
        pids = _worker_pids(out)
        if pids and log.exists() and part:
            os.kill(pids[0], signal.SIGKILL)
            killed = pids[0]
        time.sleep(0.05)
    _, err = proc.communicate(timeout=300)
    assert killed is not None
    assert proc.returncode == 0, err
    recs = manifest(out)
    assert {r["job"] for r in recs if r["status"] == "done"} == {"a", "b"}
    assert max(r["attempts"] for r in recs) == 2  # the killed job ran again
    assert killed not in _worker_pids(out)


def test_chunked_video_seams(tmp_path):
    """A 10 s real video in chunks of 4 s, each starting (window_s + 2 s) early, against one pass: every frame once,
    one face id across the seams, and the landmarks, pose and AU readings settled at the seams. (Mechanism test of
    the seams with the person-model window shortened to 2 s so a 10 s video has real seams; the default overlap
    follows the configured window.)"""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from make_video import make_video

    video = make_video(tmp_path / "v.mp4", frames=300)
    cfg = tmp_path / "w2.toml"
    cfg.write_text('[[stages]]\nkind = "landmarks"\n[[stages]]\nkind = "canonical"\nwindow_s = 2.0\n'
                   '[[stages]]\nkind = "aus"\n[[stages]]\nkind = "emotion"\n')
    results = {}

    def run(name, *extra):
        results[name] = batch(str(video), "--out", str(tmp_path / name), "--config", str(cfg), *extra)

    threads = [threading.Thread(target=run, args=("one",)),
               threading.Thread(target=run, args=("chunks", "--chunk-s", "4", "--workers", "2"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.returncode == 0 for p in results.values()), {k: p.stderr for k, p in results.items()}
    recs = manifest(tmp_path / "chunks")
    assert sorted(r["job"] for r in recs) == ["v", "v#0", "v#1", "v#2"]  # three chunks, then the merged input
    assert not list((tmp_path / "chunks" / ".parts").glob("*.parquet"))  # parts removed after the merge
    a, b = read_results(tmp_path / "one" / "v.parquet"), read_results(tmp_path / "chunks" / "v.parquet")
    assert b.column("frame").to_pylist() == list(range(300)) == a.column("frame").to_pylist()
    assert set(b.column("face_id").to_pylist()) == {0}
    mesh = [c for c in a.column_names if c.startswith("mp_")]
    aus = [c for c in a.column_names if c.startswith("AU") and c.endswith("_r")]

    def block(t, cols, lo, hi):
        return np.stack([t.column(c).to_numpy()[lo:hi] for c in cols], axis=1)

    for seam in (120, 240):  # chunk k keeps frames from 120 k
        after = slice(seam, seam + 15)  # the first half second after the seam
        d_mesh = np.abs(block(a, mesh, after.start, after.stop) - block(b, mesh, after.start, after.stop))
        d_au = np.abs(block(a, aus, after.start, after.stop) - block(b, aus, after.start, after.stop))
        d_yaw = np.abs(a.column("yaw_deg").to_numpy()[after] - b.column("yaw_deg").to_numpy()[after])
        assert d_mesh.max() < 1.0 and d_yaw.max() < 0.5 and d_au.max() < 0.1, (seam, d_mesh.max(), d_au.max())
    sess = json.loads((tmp_path / "chunks" / "v_session.json").read_text())
    assert sess["stats"]["frames"] == 300 and len(sess["chunks"]) == 3
    assert sess["stages"]["aus"]["faces"]["0"]["n_frames"] == 300


def test_allow_incomplete_accepts_the_frames_of_a_truncated_input(tmp_path):
    """`rtface batch --allow-incomplete`: a video cut in half (its index first) fails without the flag, naming the
    flag; with it, the frames that decoded make a finished table and the input counts as done."""
    from tests.unit.test_sources import _faststart

    src = tmp_path / "in"
    src.mkdir()
    data = _faststart(SAMPLE_VIDEO.read_bytes())
    (src / "cut.mp4").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    p = batch(str(src), "--out", str(out), "--workers", "1", "--retries", "0", "--no-progress")
    assert p.returncode == 2 and "--allow-incomplete" in p.stderr, p.stderr
    ok = batch(str(src), "--out", str(out), "--workers", "1", "--retries", "0", "--no-progress",
               "--allow-incomplete")
    assert ok.returncode == 0, ok.stderr
    assert 20 < read_results(out / "cut.parquet").num_rows < 72


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity API on this platform")
def test_pinned_local_workers_each_run_on_their_own_core(tmp_path):
    """Mechanism (rtface.batch.local): real worker processes; pinned, every thread of worker i runs on core i;
    with pin=False (the default) on every core the driver may use."""
    from rtface.batch.local import LocalBackend

    allowed = sorted(os.sched_getaffinity(0))
    for pin in (True, False):
        be = LocalBackend(1, None, tmp_path / str(pin), pin=pin)
        try:
            deadline = time.monotonic() + 60
            while not all(w.ready for w in be._workers) and time.monotonic() < deadline:
                be.poll(0.2)
            assert all(w.ready for w in be._workers)
            pid = be.pids()[0]
            threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            assert len(threads) > 1  # the worker's own threads (stdin reader, imported libraries) exist by now
            want = {allowed[0]} if pin else set(allowed)
            assert all(os.sched_getaffinity(t) == want for t in threads)
        finally:
            be.close()
