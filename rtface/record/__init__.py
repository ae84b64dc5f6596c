"""Record a running engine's messages to one Parquet file and replay them (``rtface record`` / ``rtface replay``).

- :mod:`rtface.record.recording`: the file format (one row per message, schema, footer metadata) and its reader.
- :mod:`rtface.record.recorder`: the subscriber side (stream + alert channel -> rows; gaps from sequence numbers).
- :mod:`rtface.record.replay`: republish a recording on the same topics, at its own pace or faster.
"""
