"""OBP, the Open Business Platform."""

__version__ = "0.1.0"
