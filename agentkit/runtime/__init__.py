"""Running bots: loading them, routing events to them, and the workers that do it."""
