"""Property tests of every decoder of published messages: the subscriber's frame decoding (wire.decode_multipart)
and what ``rtface listen`` does with a decoded message (format_summary). Any bytes give either a decoded message
or a TransportError; a decoded message always prints."""
from __future__ import annotations

import msgpack
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtface.errors import TransportError
from rtface.transport import TOPIC_FRAME, TOPIC_SESSION, TOPIC_STATS, decode_multipart, format_summary

TOPICS = st.sampled_from([TOPIC_FRAME, TOPIC_STATS, TOPIC_SESSION, "rtface.v1.alert.x", "rtface.v1.gaze", "x"])
scalars = (st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text(max_size=12)
           | st.binary(max_size=16))
nd = st.fixed_dictionaries({
    "__nd__": st.sampled_from([True, False, 1]),
    "dtype": st.sampled_from(["<f4", "|u1", "<i8", "|b1", ">f4", "<U3", "<f4,<f4", "<f4(2,)", "|O", "", "<"]),
    "shape": st.lists(st.integers(-2, 5), max_size=3) | scalars,
    "data": st.binary(max_size=64) | scalars,
})
values = st.recursive(scalars | nd, lambda k: st.lists(k, max_size=4) | st.dictionaries(
    st.sampled_from(["faces", "au", "pose", "names", "intensity", "presence", "emotion", "probs", "id",
                     "confidence", "drops", "latency_ms", "fps", "frame", "t_capture_ns", "x"]), k, max_size=5),
    max_leaves=25)


@st.composite
def messages(draw):
    topic = draw(TOPICS)
    head = {"topic": draw(st.sampled_from([topic, topic, "other", 3])), "v": draw(st.sampled_from([1, 1, 2, True])),
            "seq": draw(st.sampled_from([0, 5, -1, "s"])), "t_publish_ns": draw(st.sampled_from([10**18, 0, 1.5]))}
    body = draw(st.dictionaries(st.sampled_from(["faces", "frame", "t_capture_ns", "t_media_ns", "fps", "drops",
                                                 "latency_ms", "stats", "level", "x"]), values, max_size=6))
    payload = msgpack.packb({**body, **head}, use_bin_type=True)
    cut = draw(st.sampled_from([None, None, None, 1, len(payload) // 2]))
    frames = [topic.encode(), payload if cut is None else payload[:cut]]
    if draw(st.integers(0, 9)) == 0:
        frames.append(b"extra")
    return frames


def _check(frames):
    try:
        topic, msg = decode_multipart(frames)
    except TransportError:
        return
    assert isinstance(topic, str) and isinstance(msg, dict)
    line = format_summary(topic, msg)
    assert isinstance(line, str) and line


@given(messages())
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_structured_messages_decode_or_raise_transport_error_and_always_print(frames):
    _check(frames)


@given(st.lists(st.binary(max_size=200), max_size=4))
@settings(max_examples=400, deadline=None)
def test_random_frames_decode_or_raise_transport_error(frames):
    _check(frames)


@given(st.builds(lambda faces: {"faces": faces}, st.lists(values, max_size=3)), TOPICS)
@settings(max_examples=300, deadline=None)
def test_summary_of_any_plain_map_never_raises(body, topic):
    assert isinstance(format_summary(topic, body), str)


def test_structured_dtype_and_huge_shape_are_rejected():
    for dtype, shape, data in (("<f4,<f4", [1], b"\x00" * 8), ("<f4(2,)", [1], b"\x00" * 8),
                               ("<f4", [2**62, 2**62], b"")):
        payload = msgpack.packb({"topic": TOPIC_FRAME, "v": 1, "seq": 0, "t_publish_ns": 1,
                                 "a": {"__nd__": True, "dtype": dtype, "shape": shape, "data": data}})
        try:
            decode_multipart([TOPIC_FRAME.encode(), payload])
        except TransportError as exc:
            assert "field 'a'" in str(exc)
        else:
            raise AssertionError(f"{dtype} {shape} was accepted")
    assert np.dtype("<f4,<f4").fields  # (the numpy behaviour the check guards against)
