"""Per-face behavioural signals computed over time (eye closure, blinks, PERCLOS), pure logic on media time."""
