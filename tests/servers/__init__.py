"""Loopback servers that speak the real APIs' payloads, for the real adapters' tests."""
