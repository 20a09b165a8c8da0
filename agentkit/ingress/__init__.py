"""Where deliveries enter: the webhook receiver and its health and metrics routes."""
