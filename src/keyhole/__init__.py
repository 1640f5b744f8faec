"""Keyhole: a gateway that holds third-party credentials and lets callers use them without seeing them."""

__version__ = "0.1.0"
