"""terralab — a research workbench for machine learning on Earth-sensing data."""

__version__ = "0.1.0"
