"""Face landmark detection backends (MediaPipe) and the face-identity tracker used by the landmark stage."""
