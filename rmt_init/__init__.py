"""rmt_init: random-matrix theory of neural-network initialization."""
__version__ = "0.1.0"
