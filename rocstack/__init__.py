"""rocstack: build and validate ROCm ML container stacks for exact GPU architectures."""

__version__ = "0.1.0"
