"""Independent high-precision references shared by several test files."""
from __future__ import annotations

import mpmath
import numpy as np


def mp_product_log_singular_values(mats: np.ndarray, dps: int) -> list[float]:
    """``ln σ_i`` of ``mats[-1] @ … @ mats[0]`` in ``dps``-digit arithmetic (mpmath's SVD), decreasing."""
    with mpmath.workdps(dps):
        p = mpmath.eye(mats.shape[-1])
        for m in mats:
            p = mpmath.matrix(m.tolist()) * p
        return sorted((float(mpmath.log(s)) for s in mpmath.svd_r(p, compute_uv=False)), reverse=True)
