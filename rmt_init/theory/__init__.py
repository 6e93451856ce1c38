"""Infinite- and finite-width theory (numpy, scipy, mpmath only; never imports torch)."""
from .fuss_catalan import FussCatalan, fuss_catalan
from .laws import Law, SingularValueLaw, SpectralLaw
from .marchenko_pastur import MarchenkoPastur, marchenko_pastur
