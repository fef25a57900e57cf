"""Benchmark harness for Warden: wrk against a production-like deployment and a floor app."""
