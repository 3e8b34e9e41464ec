"""thinjail: VNET + NullFS thin jails on FreeBSD as a doit task graph."""

__version__ = "0.1.0"  # keep in step with pyproject.toml
