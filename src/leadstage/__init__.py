"""leadstage: a self-hosted lead qualification workspace."""

__version__ = "0.1.0"
