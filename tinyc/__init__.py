"""tinyc: int8 TFLite models to static-memory C for microcontrollers."""

__version__ = "0.1.0"
