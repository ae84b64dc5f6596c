"""Build-time tools for the population face model (identity, pose and camera perception through MediaPipe)."""
