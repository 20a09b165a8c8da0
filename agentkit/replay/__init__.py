"""Replay: run candidate bots over stored traffic, isolated, and report what they would do."""
