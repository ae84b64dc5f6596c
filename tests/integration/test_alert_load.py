"""Load test of the alert channel (mechanism, real processes): an `rtface run` engine raising and clearing hundreds
of alerts per second (a test stage toggles 4 faces every frame at 100 fps) to two `rtface alerts listen` listeners.
Counted from the journal and each listener's log: every event reaches both exactly once."""
from __future__ import annotations

from tests.conftest import free_port
from tests.integration import alert_procs as ap


def test_hundreds_of_alerts_per_second_reach_two_listeners(tmp_path):
    ep = f"tcp://127.0.0.1:{free_port()}"
    journal = tmp_path / "j.sqlite"
    cfg = ap.toggle_config(tmp_path, ep, journal, faces=4, period=1, fps=100)
    outs = {n: tmp_path / f"{n}.jsonl" for n in ("load_a", "load_b")}
    lsts = [ap.listener(ep, n, o, tmp_path / f"{n}.log") for n, o in outs.items()]
    eng = ap.engine(cfg, 1000, tmp_path / "engine.log")  # 10 s at 100 fps
    try:
        ap.go(tmp_path, journal, set(outs))
        assert eng.wait(180) == 0, (tmp_path / "engine.log").read_text()[-3000:]
        counts = {n: ap.wait_for(lambda o=o, n=n: ap.try_check(journal, o, n), 120, f"{n} to have every event")
                  for n, o in outs.items()}
    finally:
        for p in (*lsts, eng):
            ap.kill(p)
    evs = [e for e in ap.journal_events(journal) if e["type"] == "raised"]
    span_s = (evs[-1]["t_event_ns"] - evs[0]["t_event_ns"]) / 1e9
    rate = len(evs) / span_s
    delivered = sum(1 for e in ap.journal_events(journal) if e["type"] == "delivered")
    print(f"load: {len(evs)} alerts raised in {span_s:.1f} s ({rate:.0f} alerts/s, plus as many clears); "
          f"per listener {counts}; delivered events journaled {delivered}")
    assert rate >= 100 and all(c["raised"] == len(evs) for c in counts.values())
    assert delivered == 2 * len(evs)  # one "delivered" lifecycle event per alert and listener
