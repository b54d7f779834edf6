"""mnist-edge: handwritten-digit recognition at the edge."""

__version__ = "0.1.0"
