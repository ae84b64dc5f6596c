"""Durable alert journal: SQLite in WAL mode; every event is committed here before it is sent to anyone.

Tables: ``meta`` (journal id, schema version), ``events`` (seq, alert id, type, notify flag, times, the exact
msgpack body listeners receive), ``alerts`` (latest state of every alert, msgpack) and ``listeners`` (per durable
listener: the highest seq below which it acknowledged every event). ``sync = "full"`` (default) makes each commit
survive power loss (SQLite fsyncs the WAL on every commit); ``"normal"`` survives a killed process but may lose the
last commits on power loss. Measured commit cost on this project's machine (200 single-row commits): NORMAL p50 0.019
/ p99 0.093 ms, FULL p50 0.27 / p99 8.0 ms.

One engine per journal: an exclusive ``flock`` on ``<journal>.lock`` (released by the OS when the process dies, so
a SIGKILLed engine does not block its successor). Owned by the processing thread; readers (``rtface alerts
journal``) may open it read-only at any time.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgpack

from rtface.errors import ConfigError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL, type TEXT NOT NULL, notify INTEGER NOT NULL,
    t_event_ns INTEGER NOT NULL, t_capture_ns INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_alert ON events (alert_id);
CREATE TABLE IF NOT EXISTS alerts (id INTEGER PRIMARY KEY, rule TEXT NOT NULL, state TEXT NOT NULL,
    body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS listeners (name TEXT PRIMARY KEY, cursor INTEGER NOT NULL, t_first_ns INTEGER NOT NULL,
    t_last_ns INTEGER NOT NULL);
"""
SYNC_MODES = ("full", "normal")


def default_journal_path() -> Path:
    """``<user data folder>/alerts/journal.sqlite`` (:func:`rtface.userdirs.data_dir`: ``$RTFACE_DATA_DIR``, else
    ``$XDG_DATA_HOME/rtface``, else ``~/.local/share/rtface``)."""
    from rtface.userdirs import data_dir

    return data_dir() / "alerts" / "journal.sqlite"


class Journal:
    """Open (or create) the journal at ``path``. Raises ConfigError naming the file when that is impossible."""

    def __init__(self, path: str | Path, *, sync: str = "full") -> None:
        if sync not in SYNC_MODES:
            raise ConfigError(f"alert journal: sync {sync!r} is not one of {SYNC_MODES}")
        self.path = Path(path)
        self._lock_fd: int | None = None
        try:
            if not self.path.parent.exists():  # patient data: a folder only this user can read
                from rtface.userdirs import private_dir

                private_dir(self.path.parent)
            self._lock_fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:  # PermissionError from private_dir carries its own text
            raise ConfigError(f"alert journal {self.path}: cannot create it: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise ConfigError(f"alert journal {self.path} is in use by another running engine; give this one its "
                              f"own ([[stages]] alerts: journal = \"...\", or rtface run --journal PATH)") from exc
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={sync.upper()}")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='journal_id'").fetchone()
            if row is None:
                self.journal_id = uuid.uuid4().hex[:12]
                self._db.execute("INSERT INTO meta VALUES ('journal_id', ?), ('schema', ?)",
                                 (self.journal_id, str(SCHEMA_VERSION)))
            else:
                self.journal_id = row[0]
                schema = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if schema is None or int(schema[0]) != SCHEMA_VERSION:
                    raise ConfigError(f"alert journal {self.path}: schema {schema and schema[0]!r}, this rtface "
                                      f"reads schema {SCHEMA_VERSION}")
            self.last_seq = int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
            self._last_alert = int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM alerts").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ConfigError(f"alert journal {self.path}: not a usable SQLite journal ({exc})") from exc
        self.commits = 0

    # ------------------------------------------------------------------------------------------------ writing
    def next_alert_id(self) -> int:
        self._last_alert += 1
        return self._last_alert

    def append(self, events: list[dict[str, Any]], alerts: Iterable[dict[str, Any]],
               encode: Any) -> list[tuple[int, bytes, bool]]:
        """In one transaction: give each event the next ``seq`` (and ``journal``), store ``encode(event)`` as its
        body, and store the new state of ``alerts``. Returns [(seq, body, notify)] in order. ``event["notify"]``
        False (delivered events) keeps an event out of listener delivery."""
        out = []
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            seq = self.last_seq
            for ev in events:
                seq += 1
                notify = bool(ev.pop("notify", True))
                ev["seq"], ev["journal"] = seq, self.journal_id
                body = encode(ev)
                db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (seq, int(ev["alert_id"]), ev["type"], int(notify), int(ev["t_event_ns"]),
                            int(ev["t_capture_ns"]), body))
                out.append((seq, body, notify))
            for a in alerts:
                db.execute("INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?)",
                           (int(a["id"]), a["rule"], a["state"], msgpack.packb(a, use_bin_type=True)))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.last_seq = seq
        self.commits += 1
        return out

    def set_cursors(self, cursors: dict[str, int]) -> None:
        """Store, per durable listener, the seq below which it acknowledged everything."""
        if not cursors:
            return
        now = time.time_ns()
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany(
            "INSERT INTO listeners VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET cursor = "
            "MAX(cursor, excluded.cursor), t_last_ns = excluded.t_last_ns",
            [(n, int(c), now, now) for n, c in cursors.items()])
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------------------------------------ reading
    def cursor(self, name: str) -> int | None:
        row = self._db.execute("SELECT cursor FROM listeners WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def notify_seqs_after(self, seq: int) -> list[int]:
        """Seqs of the events for listeners after ``seq``, in order."""
        return [r[0] for r in self._db.execute("SELECT seq FROM events WHERE seq > ? AND notify = 1 ORDER BY seq",
                                                (seq,))]

    def bodies(self, seqs: list[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for i in range(0, len(seqs), 500):
            chunk = seqs[i:i + 500]
            q = f"SELECT seq, body FROM events WHERE seq IN ({','.join('?' * len(chunk))})"
            out.update({int(s): bytes(b) for s, b in self._db.execute(q, chunk)})
        return out

    def event_kind(self, seq: int) -> tuple[int, str] | None:
        """(alert id, type) of event ``seq``."""
        row = self._db.execute("SELECT alert_id, type FROM events WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def alert(self, alert_id: int) -> dict[str, Any] | None:
        """Stored state of one alert."""
        row = self._db.execute("SELECT body FROM alerts WHERE id = ?", (int(alert_id),)).fetchone()
        return None if row is None else msgpack.unpackb(row[0], raw=False)

    def open_alerts(self) -> list[dict[str, Any]]:
        """Stored state of every alert that is not cleared."""
        return [msgpack.unpackb(b, raw=False) for (b,) in
                self._db.execute("SELECT body FROM alerts WHERE state != 'cleared' ORDER BY id")]

    def close(self) -> None:
        """Close the database and release the lock. Safe to call twice."""
        db = getattr(self, "_db", None)
        if db is not None:
            self._db = None
            try:
                db.close()
            except sqlite3.Error:
                pass
        if self._lock_fd is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None


def read_events(path: str | Path, limit: int = 50) -> list[dict[str, Any]]:
    """The last ``limit`` events of a journal, oldest first, read-only (works while an engine writes it)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"alert journal {p}: no such file")
    try:
        db = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT body FROM events ORDER BY seq DESC LIMIT ?", (int(limit),)).fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"alert journal {p}: cannot read it ({exc})") from exc
    return [msgpack.unpackb(b, raw=False).get("event", {}) for (b,) in reversed(rows)]
