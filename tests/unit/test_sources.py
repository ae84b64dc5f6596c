"""Frame sources on real files (video, HEVC .mov, damaged copies, image folders) and the reconnect logic of live
sources with an injected fake capture (pure logic: there is no camera or network here)."""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtface.errors import SourceError
from rtface.sources import (CameraSource, ImageSequenceSource, StreamSource, VideoFileSource, open_source)
from rtface.sources.stream import parse_stream_url

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "rtface" / "data" / "samples" / "single_face.mp4"
MOV = ROOT / "tests" / "data" / "video" / "face_noface.mov"
LONDON = ROOT / "tests" / "data" / "faces" / "london"
MISC = ROOT / "tests" / "data" / "faces" / "misc"


def _read_all(src) -> list[tuple[np.ndarray, int]]:
    out = []
    with src:
        while (item := src.read()) is not None:
            out.append(item)
    return out


# ------------------------------------------------------------------ helpers: damaged copies of a real mp4
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


def _boxes(buf, start: int, end: int):
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", buf[i:i + 8])
        hdr = 8
        if size == 1:
            size, hdr = struct.unpack(">Q", buf[i + 8:i + 16])[0], 16
        elif size == 0:
            size = end - i
        yield kind, i, hdr, size
        i += size


def _faststart(data: bytes) -> bytes:
    """Move the moov box before mdat (shifting chunk offsets) so a cut file still opens, like a streamed mp4."""
    top = list(_boxes(data, 0, len(data)))
    moov_i, moov_size = next((i, s) for k, i, _, s in top if k == b"moov")
    moov = bytearray(data[moov_i:moov_i + moov_size])

    def shift(start: int, end: int) -> None:
        for kind, i, hdr, size in _boxes(moov, start, end):
            if kind in _CONTAINERS:
                shift(i + hdr, i + size)
            elif kind in (b"stco", b"co64"):
                n = struct.unpack(">I", moov[i + 12:i + 16])[0]
                fmt, width = (">I", 4) if kind == b"stco" else (">Q", 8)
                for k in range(n):
                    o = i + 16 + width * k
                    struct.pack_into(fmt, moov, o, struct.unpack(fmt, moov[o:o + width])[0] + moov_size)

    shift(8, len(moov))
    ftyp = b"".join(data[i:i + s] for k, i, _, s in top if k == b"ftyp")
    rest = b"".join(data[i:i + s] for k, i, _, s in top if k not in (b"ftyp", b"moov"))
    return ftyp + bytes(moov) + rest


@pytest.fixture(scope="module")
def faststart_copy(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("video") / "faststart.mp4"
    p.write_bytes(_faststart(SAMPLE.read_bytes()))
    return p


# ------------------------------------------------------------------ video files
def test_sample_video_72_frames_increasing_media_time():
    src = VideoFileSource(SAMPLE)
    frames = _read_all(src)
    assert len(frames) == 72
    assert all(img.shape == (360, 640, 3) and img.dtype == np.uint8 for img, _ in frames)
    ts = [t for _, t in frames]
    assert ts[0] == 0 and all(b > a for a, b in zip(ts, ts[1:]))
    assert ts[-1] == pytest.approx(71 / 30 * 1e9, abs=1e6)  # 30 fps file: PTS of frame 71, ns
    s = src.stats()
    assert s["frames_read"] == 72 and s["frames_expected"] == 72
    assert s["premature_end"] == 0 and s["decode_errors"] == 0
    assert src.fps == pytest.approx(30.0) and src.frame_count == 72 and not src.live
    src.close()  # second close is harmless


def test_hevc_mov_decodes_169_frames():
    cap = cv2.VideoCapture(str(MOV))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    cap.release()
    assert fourcc.lower() in ("hevc", "hvc1", "hev1")  # really HEVC
    frames = _read_all(VideoFileSource(MOV))
    assert len(frames) == 169
    assert frames[0][0].shape == (540, 960, 3)
    ts = [t for _, t in frames]
    assert ts[0] == 0 and all(b > a for a, b in zip(ts, ts[1:]))  # first PTS is negative in the file: clamped


@pytest.mark.parametrize("video,start,stop", [(MOV, 80, 0), (MOV, 40, 100), (SAMPLE, 30, 60)])
def test_a_chunk_delivers_exactly_the_frames_of_the_whole_file(video, start, stop):
    """start_frame / stop_frame (batch chunks) give the very frames and media times of one pass over the file, also
    for the variable-frame-rate HEVC clip where OpenCV's POS_FRAMES seek lands 7 frames late."""
    whole = _read_all(VideoFileSource(video))
    src = VideoFileSource(video, start_frame=start, stop_frame=stop)
    part = _read_all(src)
    want = whole[start:stop or None]
    assert len(part) == len(want)
    assert all(np.array_equal(a, b) and ta == tb for (a, ta), (b, tb) in zip(part, want))
    assert src.stats()["premature_end"] == 0 and src.stats()["decode_errors"] == 0

def test_missing_video_names_path(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match="no such file: .*nope.mp4"):
        VideoFileSource(missing).open()
    with pytest.raises(SourceError, match="no such file: .*nope.mp4"):
        open_source(str(missing))


def test_garbage_file_names_path(tmp_path):
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(b"definitely not a video " * 200)
    with pytest.raises(SourceError, match="garbage.mp4"):
        open_source(bad).open()


def test_video_without_frames_names_path(tmp_path, faststart_copy):
    data = faststart_copy.read_bytes()
    mdat = next(i for k, i, _, s in _boxes(data, 0, len(data)) if k == b"mdat")
    empty = tmp_path / "headers_only.mp4"
    empty.write_bytes(data[:mdat + 16])  # container headers, no media data
    with pytest.raises(SourceError, match="headers_only.mp4"):
        VideoFileSource(empty).open()


def test_truncated_video_keeps_frames_before_cut(tmp_path, faststart_copy):
    full = _read_all(VideoFileSource(faststart_copy))
    assert len(full) == 72
    cut = tmp_path / "cut.mp4"
    data = faststart_copy.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    src = VideoFileSource(cut)
    got = _read_all(src)
    assert 0 < len(got) < 72
    for (a, ta), (b, tb) in zip(got, full):
        assert ta == tb and np.array_equal(a, b)  # the frames before the cut are intact
    s = src.stats()
    assert s["premature_end"] == 1 and s["decode_errors"] >= 1
    assert s["frames_read"] == len(got) and s["frames_expected"] == 72


def test_corrupt_middle_recovers_and_counts(tmp_path, faststart_copy):
    data = bytearray(faststart_copy.read_bytes())
    start = int(len(data) * 0.4)
    data[start:start + 20000] = bytes(20000)  # zero a stretch of the compressed data
    bad = tmp_path / "zeroed.mp4"
    bad.write_bytes(bytes(data))
    src = VideoFileSource(bad)
    got = _read_all(src)
    s = src.stats()
    assert s["decode_errors"] > 0
    assert len(got) + s["decode_errors"] >= 72 - 3  # decoding resumed after the damaged stretch
    assert s["premature_end"] == 0


def test_video_loop_keeps_media_time_increasing():
    src = VideoFileSource(SAMPLE, loop=True)
    with src:
        ts = [src.read()[1] for _ in range(150)]
    assert all(b > a for a, b in zip(ts, ts[1:]))
    assert src.stats()["loops"] == 2 and src.frame_count is None
    assert ts[72] == pytest.approx(72 / 30 * 1e9, abs=1e6)


def test_video_realtime_is_live_and_interruptible():
    src = VideoFileSource(SAMPLE, realtime=True)
    assert src.live
    with src:
        assert src.read() is not None
        src.interrupt()
        assert src.read() is None


# ------------------------------------------------------------------ image sequences
def test_image_folder_sorted_with_media_time_from_fps():
    src = ImageSequenceSource(LONDON / "neutral", fps=10)
    frames = _read_all(src)
    names = sorted(p.name for p in (LONDON / "neutral").glob("*.jpg"))
    assert len(frames) == len(names) == 12 and [f.name for f in src.files] == names
    assert [t for _, t in frames] == [i * 100_000_000 for i in range(12)]
    assert all(img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8 for img, _ in frames)


def test_image_glob_and_single_file():
    frames = _read_all(open_source(str(LONDON / "*" / "*.jpg")))
    assert len(frames) == 24
    single = open_source(MISC / "astronaut.png")
    assert isinstance(single, ImageSequenceSource)
    got = _read_all(single)
    assert len(got) == 1 and got[0][1] == 0 and single.frame_count == 1


def test_image_folder_mixed_sizes(tmp_path):
    shutil.copy(MISC / "astronaut.png", tmp_path / "a.png")
    shutil.copy(LONDON / "neutral" / "001_03.jpg", tmp_path / "b.jpg")
    (tmp_path / "notes.txt").write_text("ignored")
    shapes = [img.shape for img, _ in _read_all(open_source(tmp_path))]
    assert len(shapes) == 2 and shapes[0] != shapes[1]


def test_unreadable_image_raises_or_skips(tmp_path):
    shutil.copy(LONDON / "neutral" / "001_03.jpg", tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    shutil.copy(LONDON / "neutral" / "003_03.jpg", tmp_path / "c.jpg")
    with pytest.raises(SourceError, match="b.jpg"):
        _read_all(ImageSequenceSource(tmp_path))
    src = ImageSequenceSource(tmp_path, on_error="skip", fps=1)
    frames = _read_all(src)
    assert [t for _, t in frames] == [0, 2_000_000_000]  # media time keeps the file's position
    assert src.stats()["unreadable"] == 1


def test_empty_folder_and_unmatched_glob(tmp_path):
    with pytest.raises(SourceError, match=str(tmp_path)):
        open_source(tmp_path).open()
    with pytest.raises(SourceError, match="matches no"):
        open_source(str(tmp_path / "*.png")).open()


# ------------------------------------------------------------------ live capture: reconnect logic (fake capture)
class FakeCapture:
    """Delivers ``n_frames`` frames, then fails every read (unplugged)."""

    def __init__(self, n_frames: int, value: int) -> None:
        self.n, self.value, self.released = n_frames, value, False

    def isOpened(self) -> bool:  # noqa: N802
        return True

    def read(self):
        if self.n <= 0 or self.released:
            return False, None
        self.n -= 1
        return True, np.full((4, 6, 3), self.value, np.uint8)

    def release(self) -> None:
        self.released = True


class ClosedCapture(FakeCapture):
    def __init__(self) -> None:
        super().__init__(0, 0)

    def isOpened(self) -> bool:  # noqa: N802
        return False


def _scripted_opener(script: list):
    calls: list = []

    def opener(target):
        calls.append(target)
        item = script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return opener, calls


def test_camera_reconnects_with_exponential_backoff():
    first, second = FakeCapture(3, 1), FakeCapture(2, 2)
    opener, calls = _scripted_opener([first, ClosedCapture(), OSError("busy"), ClosedCapture(), second])
    delays: list[float] = []
    cam = CameraSource(5, opener=opener, sleep=lambda s: delays.append(s) or False)
    cam.open()
    assert cam.live and cam.name == "camera:5"
    values = [int(cam.read()[0][0, 0, 0]) for _ in range(5)]  # read() blocks through the outage, never raises
    assert values == [1, 1, 1, 2, 2]
    assert first.released  # the dead capture was released before reopening
    assert delays == [0.1, 0.2, 0.4, 0.8]  # 0.1 s doubling (3 failed reopen attempts, then success)
    s = cam.stats()
    assert s["reconnects"] == 1 and s["failed_reads"] == 1 and s["failed_opens"] == 3
    assert s["gap_ns"] > 0 and s["frames_read"] == 5
    assert calls == [5] * 5
    cam.close()
    cam.close()
    assert second.released


def test_camera_backoff_is_capped_and_resets_after_frames():
    script = [FakeCapture(1, 1)] + [ClosedCapture()] * 7 + [FakeCapture(1, 2), ClosedCapture(), FakeCapture(1, 3)]
    opener, _ = _scripted_opener(script)
    delays: list[float] = []
    cam = CameraSource(0, opener=opener, sleep=lambda s: delays.append(s) or False, backoff_max_s=2.0)
    with cam:
        assert [int(cam.read()[0][0, 0, 0]) for _ in range(3)] == [1, 2, 3]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0, 0.1, 0.2]
    assert cam.stats()["reconnects"] == 2 and cam.stats()["failed_reads"] == 2


def test_camera_give_up_and_interrupt_end_the_stream():
    opener, _ = _scripted_opener([FakeCapture(1, 1)] + [ClosedCapture()] * 10)
    cam = CameraSource(0, opener=opener, sleep=lambda s: False, give_up_after_s=0.0)
    with cam:
        assert cam.read() is not None
        assert cam.read() is None
    assert cam.stats()["gave_up"] == 1
    opener, _ = _scripted_opener([FakeCapture(0, 0)] + [ClosedCapture()] * 10)
    cam = CameraSource(0, opener=opener, backoff_initial_s=30.0)  # real interruptible sleep
    with cam:
        cam.interrupt()
        assert cam.read() is None


def test_missing_camera_index_raises_after_bounded_tries():
    delays: list[float] = []
    cam = CameraSource(97, sleep=lambda s: delays.append(s) or False)  # real cv2 opener; no camera here
    with pytest.raises(SourceError, match="camera 97"):
        cam.open()
    assert delays == [0.1, 0.2] and cam.stats()["failed_opens"] == 3
    opener, calls = _scripted_opener([ClosedCapture()] * 5)
    with pytest.raises(SourceError, match="camera 4: cannot open after 5 tries"):
        CameraSource(4, opener=opener, open_tries=5, sleep=lambda s: False).open()
    assert len(calls) == 5


# ------------------------------------------------------------------ streams (URL handling only; no network)
def test_stream_url_parsing():
    assert parse_stream_url("rtsp://cam.local:554/live") == ("rtsp", "rtsp://cam.local:554/live")
    assert parse_stream_url("rtsp://admin:s3cret@10.0.0.5:554/h264")[1] == "rtsp://admin:***@10.0.0.5:554/h264"
    assert parse_stream_url("UDP://0.0.0.0:5000")[0] == "udp"
    for bad, why in [("ftp://host/x", "unsupported URL scheme"), ("rtsp:///nohost", "no host"),
                     ("http://host:99999/x", "malformed URL")]:
        with pytest.raises(SourceError, match=why):
            StreamSource(bad)


def test_stream_unreachable_names_url():
    # loopback port 1: connection refused at once (no external network involved)
    src = StreamSource("rtsp://127.0.0.1:1/none", open_tries=2, sleep=lambda s: False, timeout_s=1.0)
    assert src.live
    with pytest.raises(SourceError, match=r"rtsp://127\.0\.0\.1:1/none"):
        src.open()


# ------------------------------------------------------------------ dispatch
def test_open_source_dispatch(tmp_path):
    assert isinstance(open_source(0), CameraSource)
    assert open_source("2").name == "camera:2"
    assert isinstance(open_source("rtsp://h/x"), StreamSource)
    assert isinstance(open_source("https://h/x.mjpg"), StreamSource)
    assert isinstance(open_source(LONDON / "smiling"), ImageSequenceSource)
    assert isinstance(open_source(str(LONDON / "smiling" / "*.jpg")), ImageSequenceSource)
    assert isinstance(open_source(MISC / "single_face.jpg"), ImageSequenceSource)
    v = open_source(str(SAMPLE), realtime=True, loop=True)
    assert isinstance(v, VideoFileSource) and v.live and v.loop
    assert not open_source(str(SAMPLE)).live
    with pytest.raises(SourceError, match="unsupported URL scheme"):
        open_source("ftp://h/x")
    with pytest.raises(SourceError, match=f"no such file: {tmp_path / 'missing.avi'}"):
        open_source(str(tmp_path / "missing.avi"))
    with pytest.raises(SourceError):
        open_source("")
