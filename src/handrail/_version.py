__version__ = "0.1.0.dev0"
"""handrail's version (PEP 440)."""
