"""ZeroMQ/msgpack transport: wire format, message builders, publisher and subscriber (see docs/message-schema.md)."""
from rtface.transport.messages import format_summary, frame_message, session_message, stats_message
from rtface.transport.publisher import DEFAULT_ENDPOINT, Publisher
from rtface.transport.subscriber import GapCounter, Subscriber
from rtface.transport.wire import (
    TOPIC_ALERT, TOPIC_FRAME, TOPIC_GAZE, TOPIC_PREFIX, TOPIC_SESSION, TOPIC_STATS, WIRE_VERSION, alert_topic,
    decode, decode_multipart, encode, stamp,
)

__all__ = [
    "DEFAULT_ENDPOINT", "GapCounter", "Publisher", "Subscriber", "TOPIC_ALERT", "TOPIC_FRAME", "TOPIC_GAZE",
    "TOPIC_PREFIX", "TOPIC_SESSION", "TOPIC_STATS", "WIRE_VERSION", "alert_topic", "decode", "decode_multipart",
    "encode", "format_summary", "frame_message", "session_message", "stamp", "stats_message",
]
