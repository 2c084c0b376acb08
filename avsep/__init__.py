"""avsep: separate and localize the instruments in music videos."""

__version__ = "0.1.0"
