"""Patient-risk alerts: rules over per-frame signals, an alert lifecycle, a durable journal and the service that
ties them to the acknowledged alert channel (:mod:`rtface.transport.alert_channel`).

Modules: ``rules`` (rule specification, packaged defaults), ``signals`` (signal values of one frame), ``evaluator``
(onset / hysteresis / cooldown per rule and face or camera), ``lifecycle`` (alert states and events), ``journal``
(SQLite WAL), ``service`` (one object the alerts stage drives), ``format`` (one readable line per event), ``cli``.
Everything here runs on the engine's processing thread except the CLI.
"""
