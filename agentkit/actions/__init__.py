"""Actions a bot takes: callbacks, flow updates, escalations, notifications; the dial policy."""
