"""zkml: zero-knowledge verifiable ML inference on ezkl.

The library does the work (one module per pipeline stage); ``zkml_cli`` is a
thin command line over it.
"""

__version__ = "0.1.0"
