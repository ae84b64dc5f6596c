"""How a `rtface run` ends, through the real CLI in real processes: signals, `rtface ctl stop`, re-runs over an
existing result, the looping first demo, and the session message every run publishes (issue 10, items 3, 4, 6, 11).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from rtface.transport import TOPIC_FRAME, TOPIC_SESSION, Subscriber
from tests.conftest import SAMPLE_VIDEO, free_port

WAIT_S = 120  # upper bound for a state to be reached (never a timing assertion)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rtface", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def rtface(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtface", *args], capture_output=True, text=True, timeout=300)


def wait_for(cond, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"process ended before {what}: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"never reached: {what}")
        time.sleep(0.05)


def has_rows(path: Path) -> bool:  # the Parquet writer creates the .partial with its first row group
    return path.exists() and path.stat().st_size > 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_during_a_file_run_leaves_a_readable_partial(tmp_path, sig):
    out = tmp_path / "r.parquet"
    partial = tmp_path / "r.parquet.partial"
    proc = start("run", "--source", str(SAMPLE_VIDEO), "--loop", "--no-publish", "--no-control", "--out", str(out))
    try:
        wait_for(lambda: has_rows(partial), proc, "first rows written")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, err
    assert f"interrupted ({signal.Signals(sig).name})" in err and "Traceback" not in err
    assert not out.exists()
    table = pq.read_table(partial)  # has its Parquet footer
    assert table.num_rows >= 256 and table.column("frame").to_pylist()[:3] == [0, 1, 2]


def test_ctl_stop_during_a_file_run_keeps_it_partial_and_says_so(tmp_path):
    ctl, pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    out, partial = tmp_path / "r.parquet", tmp_path / "r.parquet.partial"
    with Subscriber(pub, topics=(TOPIC_SESSION,)) as sub:
        proc = start("run", "--source", str(SAMPLE_VIDEO), "--loop", "--control", ctl, "--endpoint", pub,
                     "--out", str(out))
        try:
            wait_for(lambda: has_rows(partial), proc, "first rows written")
            stop = rtface("ctl", "stop", "--endpoint", ctl)
            assert stop.returncode == 0 and "stopping" in stop.stdout, stop.stderr
            _, err = proc.communicate(timeout=WAIT_S)
            session = sub.recv(timeout_s=30)
        finally:
            proc.kill()
    assert proc.returncode == 3, err
    assert "stopped (rtface ctl stop)" in err and "the run is incomplete" in err and "--finalize-on-stop" in err
    assert not out.exists() and pq.read_table(partial).num_rows >= 256
    assert session is not None and session[1]["outcome"] == "stopped" and session[1]["complete"] is False


def test_finalize_on_stop_gives_the_stopped_file_its_name(tmp_path):
    ctl = f"tcp://127.0.0.1:{free_port()}"
    out, partial = tmp_path / "r.parquet", tmp_path / "r.parquet.partial"
    proc = start("run", "--source", str(SAMPLE_VIDEO), "--loop", "--no-publish", "--control", ctl, "--out",
                 str(out), "--finalize-on-stop")
    try:
        wait_for(lambda: has_rows(partial), proc, "first rows written")
        assert rtface("ctl", "stop", "--endpoint", ctl).returncode == 0
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.exists() and not partial.exists() and pq.read_table(out).num_rows >= 256


def test_an_existing_result_is_not_replaced_silently(tmp_path):
    out = tmp_path / "r.csv"
    first = rtface("run", "--source", str(SAMPLE_VIDEO), "--no-publish", "--no-control", "--out", str(out),
                   "--max-frames", "5")
    assert first.returncode == 0, first.stderr
    before = out.read_bytes()
    again = rtface("run", "--source", str(SAMPLE_VIDEO), "--no-publish", "--no-control", "--out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr and "--overwrite" in again.stderr
    assert "started in" not in again.stderr  # refused before any work
    assert out.read_bytes() == before and not (tmp_path / "r.csv.partial").exists()
    # --overwrite with a run that fails: the old result stays, and the user is told which file is which
    from tests.integration.test_cli import _truncated_copy

    cut = _truncated_copy(tmp_path)
    bad = rtface("run", "--source", str(cut), "--no-publish", "--no-control", "--out", str(out), "--overwrite")
    assert bad.returncode == 2 and out.read_bytes() == before
    assert f"note: {out} is an earlier complete result and was left unchanged" in bad.stderr
    assert (tmp_path / "r.csv.partial").exists()
    good = rtface("run", "--source", str(SAMPLE_VIDEO), "--no-publish", "--no-control", "--out", str(out),
                  "--overwrite")
    assert good.returncode == 0 and pcsv.read_csv(out).num_rows == 72


def test_the_first_demo_loops_the_sample_until_ctrl_c(tmp_path):
    """`rtface run` as the README's first command runs it (packaged default: the sample in real time)."""
    pub = f"tcp://127.0.0.1:{free_port()}"
    with Subscriber(pub, topics=(TOPIC_FRAME, TOPIC_SESSION)) as sub:
        proc = start("run", "--endpoint", pub, "--no-control")
        try:
            seen = -1
            deadline = time.monotonic() + WAIT_S
            while seen < 100 and time.monotonic() < deadline:  # the clip has 72 frames
                got = sub.recv(timeout_s=1.0)
                if got and got[0] == TOPIC_FRAME:
                    seen = max(seen, got[1]["frame"])
            assert seen >= 100 and proc.poll() is None
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=WAIT_S)
            session = None
            while session is None:
                got = sub.recv(timeout_s=30)
                assert got is not None
                session = got[1] if got[0] == TOPIC_SESSION else None
        finally:
            proc.kill()
    assert "played in a loop until Ctrl-C" in err and proc.returncode == 130, err
    assert session["outcome"] == "interrupted"


def test_the_sample_as_a_file_run_plays_once(tmp_path):
    out = tmp_path / "s.csv"
    p = rtface("run", "--source", "sample", "--no-publish", "--no-control", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert pcsv.read_csv(out).num_rows == 72 and "in a loop" not in p.stderr


def test_no_native_log_lines_through_the_python_api(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    code = f"""
import sys
from rtface.config import load_config, with_overrides
from rtface.graph.runner import Engine
from rtface.errors import SourceError
cfg = with_overrides(load_config(), source={{"spec": {str(SAMPLE_VIDEO)!r}, "realtime": False}},
                     publish={{"enabled": False}}, control={{"enabled": False}}, engine={{"max_frames": 20}})
print(len(list(Engine(cfg).results())), "frames")
print("python's own stderr line", file=sys.stderr)
try:
    Engine(with_overrides(cfg, source={{"spec": {str(bad)!r}}})).run()
except SourceError as exc:
    print("error:", exc, file=sys.stderr)
"""
    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_minloglevel", "OPENCV_FFMPEG_LOGLEVEL")}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0 and "20 frames" in p.stdout, p.stderr
    assert p.stderr.splitlines() == ["python's own stderr line",
                                     f"error: video source: OpenCV/FFmpeg cannot open {bad} (corrupt or "
                                     f"unsupported format)"], p.stderr
