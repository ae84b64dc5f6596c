// rtface dashboard page: renders the state the server sends over the WebSocket (/ws). No external code; every
// value is put into the page as text (never as HTML). The server sends the newest state whenever this page is
// ready for one; states that came while it was busy are skipped and counted ("dropped for this browser").
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
      else if (k === "style") Object.assign(e.style, v);  // CSSOM, allowed by the page's CSP (attributes are not)
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  };
  const num = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v)) ? "-" : Number(v).toFixed(d);
  const clock = (ns) => (typeof ns === "number" && ns > 0) ? new Date(ns / 1e6).toLocaleTimeString() : "-";
  const WINDOW_S = 30;
  const series = new Map();          // signal -> [[t_s, value], ...]
  const chosen = new Set(["AU12_r", "AU06_r", "emotion_happiness", "yaw_deg"]);
  const colors = ["#53b1fd", "#32d583", "#fdb022", "#f97066", "#9e77ed", "#f670c7", "#2ed3b7", "#fef0c7"];
  let state = null, preview = null, previewImg = null, ws = null, req = 0, clockOffset = 0;
  const pending = new Map();          // req -> alert id (acknowledgements on the way)
  const byInput = $("ack-by");
  byInput.value = localStorage.getItem("rtface.by") || "";
  byInput.addEventListener("change", () => localStorage.setItem("rtface.by", byInput.value));

  function connect() {
    ws = new WebSocket(`ws://${location.host}/ws`);
    ws.onopen = () => { $("socket-banner").hidden = true; };
    ws.onclose = () => { $("socket-banner").hidden = false; setTimeout(connect, 1000); };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === "state") { state = m; clockOffset = Date.now() / 1e3 - m.t_server_ns / 1e9; render(); }
      else if (m.type === "preview") { setPreview(m); }
      else if (m.type === "ack_result") { ackResult(m); }
      else if (m.type === "error") { console.warn("dashboard:", m.error); }
    };
  }

  function acknowledge(alertId, button) {
    req += 1;
    pending.set(req, alertId);
    button.disabled = true;
    button.textContent = "acknowledging ...";
    ws.send(JSON.stringify({type: "ack", alert_id: alertId, by: byInput.value || undefined, req}));
  }

  function ackResult(m) {
    pending.delete(m.req);
    const li = document.querySelector(`#alerts li[data-alert-id="${m.alert_id}"]`);
    alertsKey = "";
    if (li && !m.ok) {
      li.dataset.ackError = m.error || "failed";
      const b = li.querySelector("button"); if (b) { b.disabled = false; b.textContent = "Acknowledge"; }
      li.append(el("div", {class: "note", text: `not acknowledged: ${m.error}`}));
    }
  }

  // ------------------------------------------------------------------------------------------------- header
  function renderHeader(cam) {
    const s = state.stream;
    const st = $("stream-state");
    st.textContent = s.state; st.className = `pill ${s.state}`; st.dataset.state = s.state;
    const banner = $("stall-banner");
    const stalled = state.cameras.filter((c) => c.state === "stalled");
    banner.hidden = stalled.length === 0;
    if (stalled.length) {
      banner.textContent = stalled.map((c) => `STREAM STALLED${c.name ? " (" + c.name + ")" : ""}: no message ` +
        `from ${s.endpoint} for ${num(c.age_s, 1)} s (last frame ${c.frame ? c.frame.index : "-"})`).join(" | ");
    }
    $("frame-index").textContent = cam && cam.frame ? cam.frame.index : "-";
    $("source").textContent = cam && cam.frame ? `${cam.frame.source} ${cam.frame.width}x${cam.frame.height}` : s.endpoint;
    const stats = cam && cam.stats;
    $("engine-fps").textContent = stats ? num(stats.fps, 1) : "-";
    $("latency").textContent = stats && stats.latency_ms ? `${num(stats.latency_ms.p50, 1)} / ${num(stats.latency_ms.p99, 1)}` : "-";
    const ch = state.channel;
    $("channel-state").textContent = ch.state + (ch.error ? ` (${ch.error})` : "");
    $("channel-state").dataset.state = ch.state;
  }

  // ------------------------------------------------------------------------------------------------- alerts
  let alertsKey = "";
  function renderAlerts() {
    // rebuilt only when the alerts changed, so a button is not replaced under the pointer while it is clicked
    const key = JSON.stringify([state.alerts, state.cleared, [...pending.values()]]);
    if (key === alertsKey) return;
    alertsKey = key;
    const ul = $("alerts");
    ul.replaceChildren();
    for (const a of state.alerts) {
      const who = a.face_id >= 0 ? `face ${a.face_id}` : "camera";
      const li = el("li", {class: `alert ${a.priority || ""} ${a.state}`, "data-alert-id": String(a.alert_id),
                           "data-state": a.state, "data-rule": a.rule || ""});
      if (a.state === "active" && !a.local && !a.replayed) {
        const b = el("button", {class: "ack", text: "Acknowledge"});
        if ([...pending.values()].includes(a.alert_id)) { b.disabled = true; b.textContent = "acknowledging ..."; }
        b.addEventListener("click", () => acknowledge(a.alert_id, b));
        li.append(b);
      }
      li.append(el("div", {}, el("b", {text: `${a.priority || ""} ${a.rule || ""}`}), ` #${a.alert_id} ${who} @ ${a.camera || ""} ${clock(a.t_capture_ns)}`));
      if (a.message) li.append(el("div", {text: a.message}));
      const stateText = a.state === "acknowledged" ? `acknowledged by ${a.acked_by} at ${clock(a.t_acked_ns)}` :
        a.local ? "this dashboard lost the engine's alert heartbeat" : a.replayed ? "replayed (read-only)" : "active, not acknowledged";
      li.append(el("div", {class: "state", text: stateText}));
      ul.append(li);
    }
    $("alert-count").textContent = String(state.alerts.length);
    const cl = $("cleared");
    cl.replaceChildren(...state.cleared.map((a) => el("li", {class: "alert", "data-alert-id": String(a.alert_id)},
      `${a.rule} #${a.alert_id} cleared ${clock(a.t_cleared_ns)} (${a.reason || ""})`)));
  }

  // ------------------------------------------------------------------------------------------------- faces
  function bars(names, values, cls, max, presence) {
    const box = el("div", {class: "bars"});
    names.forEach((n, i) => {
      const v = values[i];
      const row = {class: `${cls}${presence && presence[i] ? " present" : ""}`, "data-name": n};
      const pct = v === null ? 0 : Math.max(0, Math.min(100, 100 * v / max));
      box.append(el("span", {...row, class: row.class + " name", text: n}),
                 el("div", {class: `${row.class} bar`}, el("span", {style: {width: `${pct}%`}})),
                 el("span", {...row, class: row.class + " value", text: num(v, 2)}));
    });
    return box;
  }

  function faceCard(f, cam) {
    const card = el("section", {class: "face", "data-face-id": String(f.id), "data-camera": cam.name});
    const ready = f.neutral_ready ? el("span", {class: "badge ready", text: "neutral ready"}) :
      el("span", {class: "badge", text: "learning the face's shape"});
    card.append(el("h2", {text: `Face ${f.id}${cam.name ? " @ " + cam.name : ""}`}),
      el("div", {}, ready, el("span", {class: "badge", "data-field": "shape_frames",
        text: `shape frames ${typeof f.shape_frames === "number" ? num(f.shape_frames, 1) : f.shape_frames}`}),
        el("span", {class: "badge", text: `confidence ${num(f.confidence, 2)}`})));
    const p = f.pose;
    if (p) card.append(el("div", {class: "pose", "data-field": "pose",
      text: `yaw ${num(p.yaw_deg, 1)}°  pitch ${num(p.pitch_deg, 1)}°  roll ${num(p.roll_deg, 1)}°  ` +
            `t ${num(p.tx_cm, 1)}, ${num(p.ty_cm, 1)}, ${num(p.tz_cm, 1)} cm`}));
    const cols = el("div", {class: "cols"});
    if (f.au) cols.append(el("div", {}, el("h3", {text: "Action Units (0-5; bold = present)"}),
                                  bars(f.au.names, f.au.intensity, "au", 5, f.au.presence)));
    const right = el("div", {});
    if (f.emotion) right.append(el("h3", {text: "Emotion"}), bars(f.emotion.names, f.emotion.probs, "emo", 1));
    if (f.eyes) right.append(el("h3", {text: "Eyes (closure 0-1)"}),
      bars(["left", "right"], [f.eyes.eye_closure_l, f.eyes.eye_closure_r], "eye", 1),
      el("div", {class: "note", text: `closed ${f.eyes.AU45_c ? "yes" : "no"}, PERCLOS ${num(f.eyes.perclos, 2)}, blinks/min ${num(f.eyes.blink_rate_min, 1)}`}));
    if (f.gaze) {
      const names = Object.keys(f.gaze.share);
      right.append(el("h3", {text: `Gaze on this face (dwell share of ${cam.gaze ? cam.gaze.samples : 0} samples)`}),
                   bars(names, names.map((n) => f.gaze.share[n]), "aoi", 1));
    }
    cols.append(right);
    card.append(cols);
    return card;
  }

  function renderFaces() {
    const box = $("faces");
    const cards = [];
    for (const cam of state.cameras) for (const f of cam.faces) cards.push(faceCard(f, cam));
    if (!cards.length) cards.push(el("section", {class: "face", text: "No face in view."}));
    box.replaceChildren(...cards);
  }

  // ------------------------------------------------------------------------------------------------- series
  function signalsOf(f) {
    const out = {};
    if (f.au) f.au.names.forEach((n, i) => { out[`${n}_r`] = f.au.intensity[i]; });
    if (f.emotion) f.emotion.names.forEach((n, i) => { out[`emotion_${n}`] = f.emotion.probs[i]; });
    if (f.pose) for (const k of ["yaw_deg", "pitch_deg", "roll_deg"]) out[k] = f.pose[k];
    if (f.eyes) { out.eye_closure_l = f.eyes.eye_closure_l; out.eye_closure_r = f.eyes.eye_closure_r; }
    return out;
  }

  function updateSeries(cam) {
    if (!cam || !cam.frame || !cam.faces.length) return;
    const t = cam.frame.t_receive_ns / 1e9;
    const sig = signalsOf(cam.faces[0]);
    for (const [k, v] of Object.entries(sig)) {
      if (!series.has(k)) { series.set(k, []); addChoice(k); }
      const s = series.get(k);
      if (!s.length || s[s.length - 1][0] !== t) s.push([t, v]);
      while (s.length && s[0][0] < t - WINDOW_S) s.shift();
    }
  }

  function addChoice(k) {
    const cb = el("input", {type: "checkbox"}); cb.checked = chosen.has(k);
    cb.addEventListener("change", () => { if (cb.checked) chosen.add(k); else chosen.delete(k); drawSeries(); });
    $("series-choice").append(el("label", {}, cb, " " + k));
  }

  function drawSeries() {
    const c = $("series"), g = c.getContext("2d");
    g.clearRect(0, 0, c.width, c.height);
    const now = Date.now() / 1e3 - clockOffset;  // the server's clock (the series carry server times)
    const legend = [];
    let i = 0;
    for (const k of chosen) {
      const s = series.get(k); if (!s || !s.length) continue;
      const vals = s.map((p) => p[1]).filter((v) => v !== null);
      const lo = k.endsWith("_deg") ? -45 : 0, hi = k.endsWith("_deg") ? 45 : (k.endsWith("_r") ? 5 : 1);
      g.strokeStyle = colors[i % colors.length]; g.lineWidth = 2; g.beginPath();
      let first = true;
      for (const [t, v] of s) {
        if (v === null) { first = true; continue; }
        const x = c.width * (1 - (now - t) / WINDOW_S), y = c.height * (1 - (v - lo) / (hi - lo));
        if (first) g.moveTo(x, y); else g.lineTo(x, y);
        first = false;
      }
      g.stroke();
      legend.push(el("span", {style: {color: colors[i % colors.length]}, "data-signal": k,
        text: `${k} ${num(vals.length ? vals[vals.length - 1] : null, 2)} (${lo}..${hi})`}));
      i += 1;
    }
    $("series-legend").replaceChildren(...legend);
  }

  // ------------------------------------------------------------------------------------------------- preview
  function setPreview(m) {
    preview = m;
    const img = new Image();
    img.onload = () => { previewImg = img; drawPreview(); };
    img.src = `data:image/jpeg;base64,${m.jpeg}`;
    $("preview-note").textContent = `camera image of frame ${m.frame} (${m.width}x${m.height}, low rate)`;
    $("preview").dataset.images = String(Number($("preview").dataset.images || 0) + 1);
  }

  function drawPreview() {
    const c = $("preview"), g = c.getContext("2d");
    const cam = state && state.cameras.find((x) => x.frame);
    g.fillStyle = "#0f1420"; g.fillRect(0, 0, c.width, c.height);
    if (!cam) return;
    const W = cam.frame.width || 640, H = cam.frame.height || 360, s = Math.min(c.width / W, c.height / H);
    if (previewImg) g.drawImage(previewImg, 0, 0, W * s, H * s);
    if (!$("show-landmarks").checked) return;
    g.fillStyle = "#32d583";
    let drawn = 0;
    for (const f of cam.faces) {
      const lm = f.landmarks; if (!lm) continue;
      for (let i = 0; i + 1 < lm.length; i += 2) {
        if (lm[i] === null) continue;
        g.fillRect(lm[i] * s - 1, lm[i + 1] * s - 1, 2, 2); drawn += 1;
      }
    }
    c.dataset.points = String(drawn);
  }

  // ------------------------------------------------------------------------------------------------- boundaries
  function renderBoundaries(cam) {
    const rows = [];
    const add = (where, what, v) => rows.push(el("tr", {"data-key": `${where}.${what}`},
      el("td", {text: where}), el("td", {text: what}), el("td", {class: "n", text: String(v ?? "-")})));
    const st = cam && cam.stats;
    const d = (st && st.drops) || {};
    const drop = /drop|overrun|skip|torn|error|missed|lost|late|reconnect|fail|premature|unreadable|frames_read/;
    for (const [k, v] of Object.entries(d.source || {})) if (drop.test(k)) add("camera/decoder", k, v);
    for (const [k, v] of Object.entries(d.ring || {})) if (drop.test(k)) add("frame ring", k, v);
    for (const [k, v] of Object.entries(d.stage_errors || {})) add("stage errors", k, v);
    for (const [k, v] of Object.entries(d.publisher || {})) add("engine publisher", k, v);
    const s = state.stream;
    add("engine -> dashboard", "received", s.received);
    add("engine -> dashboard", "missed frames (seq gaps)", s.missed_frames);
    add("engine -> dashboard", "frame index gaps", s.index_gaps);
    add("engine -> dashboard", "malformed", s.malformed);
    add("engine -> dashboard", "frames/s received", cam ? num(cam.rx_fps, 1) : "-");
    add("dashboard -> this browser", "states sent", state.you ? state.you.sent : "-");
    add("dashboard -> this browser", "states dropped (drop to latest)", state.you ? state.you.dropped : "-");
    add("dashboard -> browsers", "connected", state.clients.connected);
    if (cam && cam.frame) add("capture -> engine publish", "latency ms (this frame)", num(cam.frame.latency_ms, 1));
    $("boundaries").tBodies[0].replaceChildren(...rows);
  }

  function render() {
    const cam = state.cameras.find((c) => c.frame) || state.cameras[0];
    renderHeader(cam);
    renderAlerts();
    renderFaces();
    renderBoundaries(cam);
    updateSeries(cam);
  }

  setInterval(() => { if (state) { drawSeries(); drawPreview(); } }, 100);
  connect();
})();
