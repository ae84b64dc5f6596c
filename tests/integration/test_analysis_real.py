"""Behaviour analyses through the shipped paths on real video and real photos: `rtface run --out` (analysis and
report at the end), `rtface analyze`, the live stream (rolling values, session topic), and the report opened in
headless Chromium. Assertions are properties (agreement between paths, known lags, pose removal), never AU
values of the face model, which is still changing."""
from __future__ import annotations

import json
import math
import shutil
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rtface.cli import main
from tests.conftest import SAMPLE_VIDEO, free_port
from tests.integration.analysis_clips import expression_sequence, shifted_face_clip, two_person_clip

RUN = ["--write-canonical", "--no-publish", "--no-control"]


def _run(source: Path, out: Path, *extra: str) -> int:
    return main(["run", "--source", str(source), "--out", str(out), *RUN, *extra])


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("analysis") / "sample.parquet"
    assert _run(SAMPLE_VIDEO, out) == 0
    return out


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_run_out_writes_measures_and_report_equal_to_rtface_analyze(sample_run: Path, tmp_path: Path):
    stem = sample_run.with_suffix("")
    names = ["_analysis.json", "_analysis_faces.csv", "_analysis_windows.csv", "_analysis_dyads.csv", "_report.html"]
    for suffix in names:
        assert (stem.parent / (stem.name + suffix)).is_file(), suffix
    session = json.loads((stem.parent / "sample_session.json").read_text())
    live = session["stages"]["behaviour"]["faces"]["0"]
    # the same measures in the session CSV, next to the AU stage's OpenDBM variables
    header = (stem.parent / "sample_session.csv").read_text().splitlines()[0].split(",")
    assert {"fac_AU12int_mean", "speed_face_mean", "asym_face_mean", "perclos", "bbx_diversity"} <= set(header)
    # `rtface analyze` on a copy of the table recomputes every measure from the file: identical values
    copy = tmp_path / "copy.parquet"
    shutil.copy(sample_run, copy)
    assert main(["analyze", str(copy)]) == 0
    offline = json.loads((tmp_path / "copy_analysis.json").read_text())["faces"]["0"]
    assert set(offline) == set(live)
    assert [k for k in live if not _close(live[k], offline[k])] == []
    # the AU stage's own OpenDBM session variables agree with the analysis's
    au = session["stages"]["aus"]["faces"]["0"]
    assert au["fac_hapintsoft_mean"] == pytest.approx(live["fac_hapintsoft_mean"], rel=1e-9)
    # properties of this clip (one person talking and smiling, one blink near the end)
    assert live["n_frames"] == 72 and live["speed_mouth_mean"] > live["speed_nose_mean"] > 0
    assert live["asym_face_mean"] > 0 and live["blink_count"] >= 1 and 0 <= live["perclos"] < 0.5
    assert live["closure_source"] == "eye_closure"  # the eyes stage of the default pipeline, not the fallback


def test_analysis_failure_never_touches_the_result_table(tmp_path: Path, capsys):
    out = tmp_path / "r.parquet"
    (tmp_path / "r_analysis.json").mkdir()  # the analysis cannot write there
    assert _run(SAMPLE_VIDEO, out) == 0
    assert pq.read_table(out).num_rows == 72
    assert (tmp_path / "r_session.json").is_file()
    assert not (tmp_path / "r_report.html").exists()
    # a table without canonical columns: kinematics/asymmetry from the mesh fallback; --no-analyze: no files
    out2 = tmp_path / "plain.csv"
    assert main(["run", "--source", str(SAMPLE_VIDEO), "--out", str(out2), "--no-publish", "--no-control",
                 "--no-analyze"]) == 0
    assert not (tmp_path / "plain_report.html").exists()
    assert main(["analyze", str(out2)]) == 0
    a = json.loads((tmp_path / "plain_analysis.json").read_text())
    assert a["quality"]["landmarks"] == "mesh (similarity fit)" and a["faces"]["0"]["speed_face_mean"] > 0
    assert main(["analyze", str(tmp_path / "missing.parquet")]) == 2
    assert "missing.parquet" in capsys.readouterr().err


def test_two_person_clip_gives_the_built_in_lag(tmp_path: Path):
    clip = two_person_clip(tmp_path / "pair.mp4", lag_s=0.5, fps=10.0)
    out = tmp_path / "pair.parquet"
    assert _run(clip, out) == 0
    t = pq.read_table(out, columns=["face_id", "bbox_x0"]).to_pydict()
    ids = sorted(set(i for i in t["face_id"] if i >= 0))
    assert len(ids) == 2
    xs = {i: np.mean([x for f, x in zip(t["face_id"], t["bbox_x0"]) if f == i]) for i in ids}
    left = min(xs, key=xs.get)
    rows = json.loads(out.with_name("pair_analysis.json").read_text())["dyads"]
    au12 = next(r for r in rows if r["signal"] == "AU12_r")
    sign = 1 if au12["face_a"] == left else -1  # positive lag: face_b follows face_a
    assert sign * au12["xc_global_lag_s"] == pytest.approx(0.5, abs=0.1 + 1e-9)
    assert sign * au12["xc_lag_median_s"] == pytest.approx(0.5, abs=0.1 + 1e-9)
    assert au12["leader"] == str(left)


def test_head_translation_only_gives_near_zero_face_kinematics(tmp_path: Path):
    clip = shifted_face_clip(tmp_path / "shift.mp4")
    out = tmp_path / "shift.parquet"
    assert _run(clip, out) == 0
    m = json.loads(out.with_name("shift_analysis.json").read_text())["faces"]["0"]
    # the head moved ~20 cm/s; the pose-removed face points keep only landmark jitter
    assert m["head_speed_mean"] > 5.0
    assert m["speed_face_mean"] < 0.1 * m["head_speed_mean"]


def test_london_photos_as_a_sequence_smiles_read_as_expressive(tmp_path: Path):
    import pandas as pd

    from rtface.analysis import frames

    pattern = "nnnnsssnnnnsssnnnn"
    folder = expression_sequence(tmp_path / "seq", pattern=pattern)
    out = tmp_path / "seq.parquet"
    assert _run(folder, out, "--sequence") == 0
    f = frames.frame_features(pd.read_parquet(out))
    assert len(f) == len(pattern)
    smile = np.array([c == "s" for c in pattern])
    e = f["expressivity"].to_numpy()
    assert e[smile].mean() > e[~smile].mean()
    s = f["speed_mouth"].to_numpy()
    onsets = [k for k in range(1, len(pattern)) if pattern[k] != pattern[k - 1]]
    steady = [k for k in range(2, len(pattern)) if pattern[k] == pattern[k - 1] == pattern[k - 2]]
    assert np.nanmean(s[onsets]) > np.nanmean(s[steady])


def test_stream_carries_rolling_values_and_the_session_topic():
    from rtface.config import load_config, with_overrides
    from rtface.graph.runner import Engine
    from rtface.transport.subscriber import Subscriber

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    cfg = with_overrides(load_config(), source={"spec": str(SAMPLE_VIDEO), "realtime": False},
                         publish={"endpoint": endpoint, "wait_subscribers": 1, "wait_timeout_s": 20.0},
                         control={"enabled": False})
    got: list[tuple[str, dict]] = []
    with Subscriber(endpoint) as sub:
        th = threading.Thread(target=lambda: Engine(cfg).run(), daemon=True)
        th.start()
        while True:
            m = sub.recv(timeout_s=60.0)
            assert m is not None, "no message within 60 s"
            got.append(m)
            if m[0] == "rtface.v1.session":
                break
        th.join(30)
    frames_ = [m for t, m in got if t == "rtface.v1.frame" and m["faces"]]
    assert len(frames_) >= 60
    b = frames_[-1]["faces"][0]["behaviour"]
    assert {"expressivity", "asym_face", "speed_face", "head_angspeed", "blink_rate_min", "perclos",
            "window_s", "frames"} <= set(b)
    # recomputed every update_every_s (0.2 s): the last frame carries values at most 6 frames (30 fps) old
    assert b["window_s"] == 10.0 and len(frames_) - 6 <= b["frames"] <= len(frames_) and b["speed_face"] > 0
    session = got[-1][1]
    assert session["stages"]["behaviour"]["faces"]["0"]["n_frames"] == 72


def _browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None, "playwright is not installed (pip install -c constraints.txt -e '.[test]')"
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        return None, "no Chromium on PATH (.ci/run installs Debian's chromium)"
    return (sync_playwright, exe), ""


def test_report_renders_offline_in_headless_chromium(sample_run: Path):
    found, why = _browser()
    if found is None:
        pytest.skip(why)
    sync_playwright, exe = found
    report = sample_run.with_name("sample_report.html")
    html = report.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report.as_uri(), wait_until="load")
        plots = page.eval_on_selector_all("svg.plot", "els => els.map(e => e.dataset.plot)")
        lines = page.eval_on_selector_all("svg.plot polyline", "els => els.length")
        box = page.eval_on_selector("svg[data-plot=aus]", "e => e.getBoundingClientRect().width")
        title = page.title()
        shot = page.screenshot(full_page=True)
        browser.close()
    assert requests == [report.as_uri()]  # the page itself, nothing else
    assert {"aus", "expressivity", "emotions", "pose", "blinks", "asymmetry", "kinematics", "windows"} <= set(plots)
    assert lines >= 20 and box > 800 and title == "sample.parquet"
    assert len(shot) > 50_000
