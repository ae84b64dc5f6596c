"""Build-time helpers for scripts/build_au_basis.py (not part of the installed rtface package)."""
