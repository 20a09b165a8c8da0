"""Approvals: actions that wait for a person, asked in Slack and the console, decided once."""
