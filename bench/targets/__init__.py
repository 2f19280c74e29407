"""The servers under test: each is started in a scratch directory on loopback ports."""
