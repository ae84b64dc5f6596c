"""The batch manifest: ``DIR/manifest.jsonl``, one JSON object per line, appended and flushed to disk as each job
ends, so an interrupted batch (Ctrl-C, a crash, a killed machine) resumes where it stopped.

Records: ``{"job": id, "input": path, "key": content key, "config": digest, "status": "done" | "failed",
"output": path, "frames": n, "attempts": n, "error": text, "t": unix s}``; ``output`` is relative to the manifest's
folder (a resume from another working directory finds it). The last record of a job wins. On resume
a job is skipped when its last record is "done" with the same input key and config digest and its output file
exists; anything else runs again. A torn last line (the process died while writing it) is ignored.
Owned by the batch driver (one process writes it).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

MANIFEST_NAME = "manifest.jsonl"


class Manifest:
    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / MANIFEST_NAME
        self.records: dict[str, dict] = {}
        self.torn = 0  # unreadable lines skipped on load
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    self.torn += 1
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("job"), str):
                    self.records[rec["job"]] = rec

    def finished(self, job_id: str, key: str, config: str, output: str) -> bool:
        """True when ``job_id`` is done for this input content and config, and its output is still there."""
        rec = self.records.get(job_id)
        where = self._where(output)
        return bool(rec and rec.get("status") == "done" and rec.get("key") == key and rec.get("config") == config
                    and rec.get("output") == where and (self.path.parent / where).exists())

    def _where(self, output: str) -> str:
        """``output`` relative to the manifest's folder when inside it (POSIX separators), else its absolute path."""
        p = Path(output).absolute()
        try:
            return p.relative_to(self.path.parent.absolute()).as_posix()
        except ValueError:
            return str(p)

    def append(self, **rec) -> None:
        rec.setdefault("t", round(time.time(), 3))
        if rec.get("output"):
            rec["output"] = self._where(str(rec["output"]))
        line = json.dumps(rec, allow_nan=False, default=str) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.records[rec["job"]] = rec
