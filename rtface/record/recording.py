"""The recording file: one Parquet table, one row per message in arrival order (``rtface record``).

Columns (every row):

==================  =========  ===================================================================================
``topic``           str        the message's topic as received (``rtface.v1.frame``, ``rtface.v1.stats@cam1`` from a
                               hub, ...; alert-channel items as ``rtface.v1.alert.<rule>``)
``channel``         str        ``stream`` (the PUB stream) or ``alerts`` (the acknowledged alert channel)
``seq``             int64      publisher's per-topic ``seq`` (alert items: the journal's event number, 0 for
                               snapshot items)
``t_publish_ns``    int64      UTC ns when the publisher sent it (alert items: ``t_event_ns``)
``t_receive_ns``    int64      UTC ns when the recorder received it
``frame``           int64      frame index (frame messages; null otherwise)
``t_capture_ns``    int64      UTC ns of capture (frame messages, alert events; null otherwise)
``camera``          str        camera id of a hub stream (null for a direct engine stream)
``gap_before``      int64      messages of this topic lost just before this one (from ``seq``; 0 normally)
``payload``         binary     the whole message, msgpack (header fields included, arrays as ``__nd__`` maps;
                               :func:`rtface.transport.wire.decode` reads it)
==================  =========  ===================================================================================

Footer metadata (key :data:`META_KEY`, JSON): format and version, endpoints, start/end (UTC ns), messages, gaps
and restarts per topic, malformed messages, alert items, ``complete`` and ``end_reason``. A recording is written to
``<out>.partial`` and gets its final name only when it is complete (no gap on any topic), unless the user accepts
an incomplete one. Pure functions and a reader; no sockets.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rtface.errors import ConfigError

META_KEY = b"rtface.recording"
FORMAT = "rtface.recording"
VERSION = 1
COLUMNS = ("topic", "channel", "seq", "t_publish_ns", "t_receive_ns", "frame", "t_capture_ns", "camera",
           "gap_before", "payload")


def schema():
    """The pyarrow schema of a recording."""
    import pyarrow as pa

    return pa.schema([
        pa.field("topic", pa.string(), nullable=False), pa.field("channel", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False), pa.field("t_publish_ns", pa.int64(), nullable=False),
        pa.field("t_receive_ns", pa.int64(), nullable=False), pa.field("frame", pa.int64()),
        pa.field("t_capture_ns", pa.int64()), pa.field("camera", pa.string()),
        pa.field("gap_before", pa.int64(), nullable=False), pa.field("payload", pa.binary(), nullable=False)])


def read_meta(path: str | Path) -> dict[str, Any]:
    """The footer metadata of a recording; ConfigError naming the file when it is not one."""
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        hint = f" (an unfinished recording is {p.name}.partial)" if Path(str(p) + ".partial").exists() else ""
        raise ConfigError(f"recording {p} does not exist{hint}")
    try:
        md = pq.ParquetFile(p).metadata.metadata or {}
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise ConfigError(f"recording {p} is not a readable Parquet file ({exc}); a recorder that was killed "
                          f"(SIGKILL) leaves an unreadable .partial") from exc
    raw = md.get(META_KEY)
    if raw is None:
        raise ConfigError(f"{p} is a Parquet file but not an rtface recording (no {META_KEY.decode()!r} metadata; "
                          f"a result table of `rtface run --out` is not a recording)")
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"recording {p}: its {META_KEY.decode()!r} metadata is not JSON") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ConfigError(f"recording {p}: format {meta.get('format') if isinstance(meta, dict) else meta!r} "
                          f"version {meta.get('version') if isinstance(meta, dict) else '?'} is not "
                          f"{FORMAT} v{VERSION}")
    return meta


def iter_rows(path: str | Path, *, batch_rows: int = 256) -> Iterator[dict[str, Any]]:
    """Rows of a recording in arrival order (dicts of the columns above), streamed batch by batch."""
    import pyarrow.parquet as pq

    read_meta(path)
    pf = pq.ParquetFile(Path(path))
    missing = [c for c in COLUMNS if c not in pf.schema_arrow.names]
    if missing:
        raise ConfigError(f"recording {path}: columns {missing} are missing")
    for batch in pf.iter_batches(batch_size=batch_rows, columns=list(COLUMNS)):
        cols = {c: batch.column(c).to_pylist() for c in COLUMNS}
        for i in range(batch.num_rows):
            yield {c: cols[c][i] for c in COLUMNS}


def read_messages(path: str | Path, topic_prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(topic, decoded message) for every row whose topic starts with ``topic_prefix``; arrays as numpy views."""
    from rtface.transport.wire import decode

    for row in iter_rows(path):
        if row["topic"].startswith(topic_prefix):
            yield row["topic"], decode(row["payload"], topic=row["topic"])
