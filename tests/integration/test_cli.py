"""The real ``rtface`` command in a subprocess: good runs, and bad input giving a clear error and exit 2."""
from __future__ import annotations

import socket
import subprocess
import sys

import pyarrow.csv as pcsv

from tests.conftest import SAMPLE_VIDEO, free_port


def rtface(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    if args and args[0] == "run" and not any(a.startswith("--control") for a in args):
        args = (*args, "--no-control")
    if args and args[0] == "run" and not any(a.startswith(("--alerts", "--journal")) for a in args):
        args = (*args, "--no-alerts")  # the packaged configs' alert channel binds a fixed port
    return subprocess.run([sys.executable, "-m", "rtface", *args], capture_output=True, text=True, timeout=timeout)


def test_run_file_to_csv(tmp_path):
    out = tmp_path / "res.csv"
    p = rtface("run", "--source", str(SAMPLE_VIDEO), "--out", str(out), "--no-publish")
    assert p.returncode == 0, p.stderr
    assert "done: 72 frames" in p.stderr and f"wrote 72 rows (72 frames) to {out}" in p.stderr
    t = pcsv.read_csv(out)
    assert t.num_rows == 72 and t.column_names[:4] == ["frame", "face_id", "timestamp", "t_capture_ns"]
    assert "W0000" not in p.stderr, "MediaPipe's native log lines leak into the terminal"


def test_missing_source_file(tmp_path):
    p = rtface("run", "--source", str(tmp_path / "nope.mp4"), "--no-publish")
    assert p.returncode == 2
    assert "no such file" in p.stderr and "nope.mp4" in p.stderr
    assert "Traceback" not in p.stderr


def test_corrupt_video_names_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    out = tmp_path / "r.parquet"
    p = rtface("run", "--source", str(bad), "--no-publish", "--out", str(out))
    assert p.returncode == 2, p.stderr
    assert "broken.mp4" in p.stderr and "Traceback" not in p.stderr
    assert not out.exists() and not (tmp_path / "r.parquet.partial").exists()  # nothing processed, nothing left


def test_unknown_config_field(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[stages]]\nkind = "landmarks"\nmax_facez = 3\n')
    p = rtface("run", "--config", str(cfg), "--no-publish")
    assert p.returncode == 2
    assert "stage 'landmarks'" in p.stderr and "unknown field 'max_facez'" in p.stderr


def test_port_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        p = rtface("run", "--source", str(SAMPLE_VIDEO), "--endpoint", f"tcp://127.0.0.1:{port}")
    assert p.returncode == 2
    assert f"tcp://127.0.0.1:{port}" in p.stderr and "already in use" in p.stderr


def test_bad_output_extension(tmp_path):
    p = rtface("run", "--source", str(SAMPLE_VIDEO), "--no-publish", "--out", str(tmp_path / "r.xlsx"))
    assert p.returncode == 2 and "r.xlsx" in p.stderr and ".parquet or .csv" in p.stderr


def test_listen_prints_readable_lines_from_a_running_engine():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    listener = subprocess.Popen([sys.executable, "-m", "rtface", "listen", "--endpoint", endpoint, "--count", "5",
                                 "--timeout", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run = rtface("run", "--endpoint", endpoint, "--loop", "--max-frames", "90")  # sample video, real time
        assert run.returncode == 0, run.stderr
        out, err = listener.communicate(timeout=60)
    finally:
        listener.kill()
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 5, (out, err)
    assert any(ln.startswith("frame ") and "faces=1" in ln for ln in lines), lines


def _truncated_copy(tmp_path):
    from tests.unit.test_sources import _faststart

    data = _faststart(SAMPLE_VIDEO.read_bytes())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_truncated_video_is_an_error_and_output_stays_partial(tmp_path):
    cut = _truncated_copy(tmp_path)
    out = tmp_path / "r.csv"
    p = rtface("run", "--source", str(cut), "--no-publish", "--out", str(out))
    assert p.returncode == 2, p.stderr
    assert "cut.mp4" in p.stderr and "incomplete file" in p.stderr and "ended early" in p.stderr
    assert not out.exists()
    partial = pcsv.read_csv(tmp_path / "r.csv.partial")
    assert 20 < partial.num_rows < 72  # the frames before the cut are kept
    ok = rtface("run", "--source", str(cut), "--no-publish", "--out", str(out), "--allow-incomplete")
    assert ok.returncode == 0 and out.exists()
