"""Bad or partial input to `rtface run`, `listen` and `ctl` through the real CLI (issue 10, items 7, 9, 10, 11):
clear errors before any work, partial configs merged over the packaged default, bound endpoints in the banner,
unreadable images counted, a listener that survives malformed messages."""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time

import msgpack
import pyarrow.csv as pcsv
import pytest
import zmq

from rtface.config import load_config
from rtface.transport import TOPIC_STATS, encode, stamp, stats_message
from tests.conftest import LONDON, SAMPLE_VIDEO, free_port


def rtface(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtface", *args], capture_output=True, text=True, timeout=300)


def clear_error(p: subprocess.CompletedProcess, *words: str) -> None:
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and "started in" not in p.stderr, p.stderr  # refused before any work
    for w in words:
        assert w in p.stderr, (w, p.stderr)


# ---------------------------------------------------------------- item 7: a config file overrides the default

def test_a_partial_config_keeps_the_packaged_pipeline(tmp_path):
    cfg = tmp_path / "mine.toml"
    cfg.write_text("[publish]\nsndhwm = 1000\n")
    loaded = load_config(cfg)
    assert loaded.publish.sndhwm == 1000 and loaded.source.realtime is True  # default pacing kept
    assert [s.kind for s in loaded.stages] == [s.kind for s in load_config().stages]
    out = tmp_path / "r.csv"
    p = rtface("run", "--config", str(cfg), "--source", str(SAMPLE_VIDEO), "--no-publish", "--no-control",
               "--out", str(out), "--max-frames", "3", "--write-canonical")
    assert p.returncode == 0, p.stderr
    cols = pcsv.read_csv(out).column_names
    assert {"pose_Rx", "AU12_r", "emotion_happiness", "cX_0", "cZ_477"} <= set(cols)


def test_a_config_with_its_own_stages_replaces_the_pipeline(tmp_path):
    cfg = tmp_path / "lm.toml"
    cfg.write_text('[source]\nloop = true\n\n[[stages]]\nkind = "landmarks"\n')
    loaded = load_config(cfg)
    assert [s.kind for s in loaded.stages] == ["landmarks"] and loaded.source.loop and loaded.source.realtime
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine]\nstats_interval_s = 0\n")
    clear_error(rtface("run", "--config", str(bad), "--no-publish"), str(bad), "stats_interval_s", ">= 0.1")


@pytest.mark.parametrize("toml, words", [
    ("[publish]\nsndhwm = 0\n", ["sndhwm", ">= 1"]),
    ("[engine]\nmax_frames = -5\n", ["max_frames", ">= 0"]),
    ("[engine]\npipeline_buffer_mb = -1\n", ["pipeline_buffer_mb", ">= 0"]),
    ('[publish]\nendpoint = "tcp://127.0.0.1:99999"\n', ["99999", "0..65535"]),
    ('[control]\nendpoint = "tcp://127.0.0.1:70000"\n', ["70000", "0..65535"]),
    ('[control]\nauth = "maybe"\n', ["auth", "'token' or 'none'"]),
])
def test_numeric_and_endpoint_fields_are_validated_at_load(tmp_path, toml, words):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    clear_error(rtface("run", "--config", str(cfg), "--no-publish"), str(cfg), *words)


def test_max_frames_flag_is_validated():
    clear_error(rtface("run", "--source", str(SAMPLE_VIDEO), "--no-publish", "--max-frames", "-1"), "max_frames")


# ---------------------------------------------------------------- item 9: bound endpoints, port hints

def test_banner_shows_the_ports_actually_bound():
    p = rtface("run", "--source", str(SAMPLE_VIDEO), "--max-frames", "2", "--endpoint", "tcp://127.0.0.1:0",
               "--control", "tcp://127.0.0.1:0")
    assert p.returncode == 0, p.stderr
    m = re.search(r"publishing on tcp://127\.0\.0\.1:(\d+) \| control on tcp://127\.0\.0\.1:(\d+)", p.stderr)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0 and m.group(1) != m.group(2), p.stderr


def test_out_of_range_port_is_refused_not_wrapped():
    clear_error(rtface("run", "--source", str(SAMPLE_VIDEO), "--endpoint", "tcp://127.0.0.1:99999"),
                "publish endpoint 'tcp://127.0.0.1:99999' is invalid", "0..65535")


def test_port_in_use_hint_does_not_suggest_the_control_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        p = rtface("run", "--source", str(SAMPLE_VIDEO), "--no-control", "--endpoint", f"tcp://127.0.0.1:{port}")
    assert p.returncode == 2 and "already in use" in p.stderr and "port 0 for a random free one" in p.stderr
    assert f":{port + 1}" not in p.stderr and "5556" not in p.stderr


def test_control_beyond_loopback_without_auth_is_refused(tmp_path):
    p = rtface("run", "--source", str(SAMPLE_VIDEO), "--no-publish", "--config", "default", "--control",
               f"tcp://0.0.0.0:{free_port()}", "--max-frames", "1")
    assert p.returncode == 0, p.stderr  # token auth is on by default: allowed, with a warning
    assert "reachable from other machines" in p.stderr
    cfg = tmp_path / "open.toml"
    cfg.write_text(f'[control]\nauth = "none"\nendpoint = "tcp://0.0.0.0:{free_port()}"\n')
    clear_error(rtface("run", "--config", str(cfg), "--source", str(SAMPLE_VIDEO), "--no-publish"),
                "refusing to bind the control socket", "no authentication")


# ---------------------------------------------------------------- item 10: unreadable images in a folder run

def test_unreadable_images_are_skipped_counted_and_reported(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("001_03.jpg", "003_03.jpg", "005_03.jpg"):
        shutil.copy(LONDON / "neutral" / name, folder / name)
    (folder / "002_bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "r.csv"
    p = rtface("run", "--source", str(folder), "--no-publish", "--no-control", "--out", str(out))
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert "1 of 4 image(s) could not be read (002_bad.jpg: not a decodable image)" in p.stderr
    assert "--allow-incomplete" in p.stderr and not out.exists()
    assert pcsv.read_csv(tmp_path / "r.csv.partial").num_rows == 3  # every readable image was processed
    ok = rtface("run", "--source", str(folder), "--no-publish", "--no-control", "--out", str(out),
                "--allow-incomplete", "--overwrite")
    assert ok.returncode == 0, ok.stderr
    assert "source: unreadable 1" in ok.stderr
    t = pcsv.read_csv(out)  # frame counts the images read; media time keeps the skipped file's slot
    assert t.column("frame").to_pylist() == [0, 1, 2]
    assert t.column("timestamp").to_pylist() == pytest.approx([0.0, 2 / 30, 3 / 30])


# ---------------------------------------------------------------- item 11: output paths checked before the work

@pytest.mark.parametrize("where", ["/proc/r.parquet", "FOLDER", "missing/r.csv", "FOLDER_PARTIAL"])
def test_unwritable_output_path_is_an_error_before_processing(tmp_path, where):
    if where == "FOLDER":
        (tmp_path / "x.parquet").mkdir()
        out = tmp_path / "x.parquet"
    elif where == "FOLDER_PARTIAL":
        (tmp_path / "y.csv.partial").mkdir()
        out = tmp_path / "y.csv"
    elif where.startswith("missing"):
        out = tmp_path / where
    else:
        out = where
    p = rtface("run", "--source", str(SAMPLE_VIDEO), "--no-publish", "--no-control", "--out", str(out))
    clear_error(p, f"output path {out}")
    assert "loading models" in p.stderr  # (the check runs before the models load)


def test_ctl_and_listen_with_garbage_endpoints():
    clear_error(rtface("ctl", "stats", "--endpoint", "garbage"), "control endpoint 'garbage' is invalid")
    clear_error(rtface("listen", "--endpoint", "tcp://nohost"), "subscriber endpoint 'tcp://nohost' is invalid")


def test_listen_survives_malformed_messages():
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    listener = subprocess.Popen([sys.executable, "-m", "rtface", "listen", "--endpoint", f"tcp://127.0.0.1:{port}",
                                 "--count", "3", "--timeout", "120"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        good = encode(stamp(TOPIC_STATS, stats_message({"fps": 30.0}), 0, 1))
        bad = [[b"rtface.v1.frame", b"\x93not-a-map"], [b"rtface.v1.x", msgpack.packb({"v": 1})],
               [b"rtface.v1.frame"], [b"rtface.v1.frame", b"", b"", b""], [b"rtface.v1.\xff", good]]
        deadline = time.monotonic() + 120
        while listener.poll() is None and time.monotonic() < deadline:
            for frames in bad:
                pub.send_multipart(frames)
            pub.send_multipart([TOPIC_STATS.encode(), good])
            time.sleep(0.1)
        out, err = listener.communicate(timeout=30)
    finally:
        listener.kill()
        pub.close(linger=0)
    assert listener.returncode == 0, err
    assert len([ln for ln in out.splitlines() if ln.startswith("stats fps=30.0")]) == 3
    assert "skipped a malformed message" in err and "Traceback" not in err
    n = int(re.search(r"malformed messages skipped (\d+)", err).group(1))
    assert n >= 5
