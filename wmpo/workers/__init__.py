"""Ray worker classes."""
