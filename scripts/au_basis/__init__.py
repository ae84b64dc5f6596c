"""Build-time helpers (renderer, MakeHuman/ICT heads, MediaPipe detection) for scripts/build_face_model.py and scripts/render_face_sets.py (not part of the installed rtface package)."""
