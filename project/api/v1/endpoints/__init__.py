"""Endpoint modules of API v1, one per domain."""
