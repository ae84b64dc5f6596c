"""rtface: real-time facial behaviour engine."""
__version__ = "0.1.0"
