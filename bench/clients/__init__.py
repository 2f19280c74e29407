"""Minimal asyncio protocol clients used by the load generators (no third-party code)."""
