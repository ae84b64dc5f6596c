"""Batch processing: many recordings through the same Engine, in parallel worker processes or on Ray.

- :mod:`rtface.batch.plan`: inputs (files, folders, globs) -> jobs (an input, or one chunk of a long video), with
  the output name of each input;
- :mod:`rtface.batch.manifest`: the append-only manifest in the output folder (resume skips finished work);
- :mod:`rtface.batch.job`: runs one job with :class:`rtface.graph.runner.Engine` (what every worker calls);
- :mod:`rtface.batch.worker` / :mod:`rtface.batch.local`: worker processes on this machine (JSON lines on pipes);
- :mod:`rtface.batch.ray_backend`: the same jobs on Ray actors (optional extra ``ray``);
- :mod:`rtface.batch.merge`: chunks of one video -> one table (seams, face ids stitched) + session summary;
- :mod:`rtface.batch.runner`: the driver (dispatch, retries, progress, merge, report).
"""
