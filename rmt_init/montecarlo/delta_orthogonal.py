"""The delta-orthogonal convolution kernel (Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington 2018).

Xiao et al. 2018 (ICML, "Dynamical isometry and a mean field theory of CNNs", arXiv 1806.05393, Algorithm 2):
a conv weight of shape ``(c_out, c_in, k_1, …, k_d)`` with odd ``k_i`` is zero everywhere except at the
centre tap, which holds ``gain × H`` with ``H`` a Haar (semi-)orthogonal ``c_out × c_in`` matrix (orthonormal
rows when ``c_out ≤ c_in``, orthonormal columns otherwise). The layer then acts on every spatial position
with the same matrix ``gain·H``: with circular padding each Fourier block of the layer is ``gain·H``
(docs/derivations.md §9.3), so a linear chain of such layers has the Jacobian ``I_positions ⊗ gain^L
H_L ⋯ H_1`` and all its singular values are ``gain^L`` (square channels).
"""
from __future__ import annotations

import torch

from rmt_init._validate import check_real

from ._device import linalg_threads

__all__ = ["delta_orthogonal_"]


def delta_orthogonal_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fill a conv weight in place with a delta-orthogonal kernel and return it (``torch.nn.init`` style).

    Args:
        tensor: a conv weight ``(out_channels, in_channels, *kernel)`` with 1–3 odd kernel sizes
            (``nn.Conv1d/2d/3d``; ``groups=1``).
        gain: the factor of the orthogonal matrix (``torch.nn.init.orthogonal_``'s ``gain``).
        generator: the ``torch.Generator`` to draw the orthogonal matrix from (reproducible draws).

    The centre tap ``tensor[:, :, k_1//2, …]`` becomes ``gain·H``, ``H`` from
    ``torch.nn.init.orthogonal_`` (QR of a Gaussian matrix with the signs of ``diag R`` folded in — Haar);
    every other tap is 0 (Xiao et al. 2018, arXiv 1806.05393, Algorithm 2). Raises ``ValueError`` for a
    tensor that is not a conv weight, an even kernel size, or a non-finite gain.
    """
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"tensor must be a torch.Tensor conv weight; got {type(tensor).__name__}")
    if tensor.dim() not in (3, 4, 5):
        raise ValueError(
            f"delta_orthogonal_ needs a conv weight (out_channels, in_channels, *kernel) with 1-3 kernel "
            f"dimensions; got shape {tuple(tensor.shape)}"
        )
    if not tensor.is_floating_point():
        raise ValueError(f"tensor must have a floating dtype; got {tensor.dtype}")
    kernel = tuple(tensor.shape[2:])
    if any(k % 2 == 0 for k in kernel):
        raise ValueError(f"delta_orthogonal_ needs odd kernel sizes (a centre tap); got kernel {kernel}")
    if 0 in tuple(tensor.shape[:2]):
        raise ValueError(f"tensor has no channels: shape {tuple(tensor.shape)}")
    gain = check_real("gain", gain)  # NaN and ±inf are refused there
    centre = (slice(None), slice(None), *(k // 2 for k in kernel))
    with torch.no_grad():
        tensor.zero_()
        block = torch.empty(tensor.shape[:2], dtype=tensor.dtype, device=tensor.device)
        with linalg_threads(tensor.device):
            torch.nn.init.orthogonal_(block, gain=gain, generator=generator)
        tensor[centre] = block
    return tensor
