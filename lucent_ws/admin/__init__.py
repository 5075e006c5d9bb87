"""The admin HTTP API, metrics and dashboard."""
