"""steerlab: a reproducible lab for activation-steering research."""
__version__ = "0.1.0"
from .config import settings, seed_everything
