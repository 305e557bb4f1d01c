"""mulligan: measure and improve how language models use second chances."""

__version__ = "0.1.0"
