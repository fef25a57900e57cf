"""Peers measured beside Warden by `make bench` (run from bench/.venv-peers, not the app's venv)."""
