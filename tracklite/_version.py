"""The installed tracklite version."""

__version__ = "0.1.0"
