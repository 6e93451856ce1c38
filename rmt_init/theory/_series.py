"""Truncated power series with exact (``Fraction``/``int``) or float coefficients.

Used to turn S-transforms into moments: ψ(u) = Σ_{k≥1} m_k u^k, χ = ψ⁻¹ (compositional inverse),
S(w) = χ(w)(1 + w)/w (Voiculescu 1987; Nica & Speicher 2006, Lecture 18). All functions take and
return coefficient lists, lowest order first, truncated to ``n + 1`` terms (orders 0..n).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Coefficients = list[Any]


def multiply(a: Sequence[Any], b: Sequence[Any], n: int) -> Coefficients:
    """(a·b) truncated at order n."""
    out = [0] * (n + 1)
    for i, ai in enumerate(a[: n + 1]):
        if ai == 0:
            continue
        for j, bj in enumerate(b[: n + 1 - i]):
            out[i + j] += ai * bj
    return out


def reciprocal(a: Sequence[Any], n: int) -> Coefficients:
    """1/a truncated at order n (a[0] ≠ 0)."""
    if a[0] == 0:
        raise ValueError("the series has no reciprocal: its constant term is 0")
    out = [0] * (n + 1)
    out[0] = 1 / a[0] if not isinstance(a[0], int) else _one_over(a[0])
    for k in range(1, n + 1):
        acc = sum(a[j] * out[k - j] for j in range(1, min(k, len(a) - 1) + 1))
        out[k] = -acc * out[0]
    return out


def _one_over(value: int):
    from fractions import Fraction

    return Fraction(1, value)


def power(a: Sequence[Any], exponent: int, n: int) -> Coefficients:
    """a^exponent (integer exponent, negative allowed) truncated at order n."""
    base = list(a[: n + 1]) + [0] * max(0, n + 1 - len(a))
    if exponent < 0:
        base, exponent = reciprocal(base, n), -exponent
    out: Coefficients = [1] + [0] * n
    while exponent:
        if exponent & 1:
            out = multiply(out, base, n)
        exponent >>= 1
        if exponent:
            base = multiply(base, base, n)
    return out


def scale_argument(a: Sequence[Any], factor: Any, n: int) -> Coefficients:
    """Coefficients of a(factor·w)."""
    out = []
    weight = 1
    for coefficient in a[: n + 1]:
        out.append(coefficient * weight)
        weight = weight * factor
    return out + [0] * (n + 1 - len(out))


def reverse(c: Sequence[Any], n: int) -> Coefficients:
    """Compositional inverse d of c(w) = c₁w + c₂w² + … (c₀ = 0, c₁ ≠ 0): c(d(u)) = u to order n.

    Lagrange inversion: d_k = [w^{k−1}] φ(w)^k / k with φ(w) = w/c(w) = 1/(c₁ + c₂w + …) (e.g. Stanley,
    Enumerative Combinatorics 2, Thm 5.4.2): n products of series, O(n³) (composing powers of d was O(n⁴)).
    """
    if c[0] != 0 or c[1] == 0:
        raise ValueError("series reversion needs c(0) = 0 and c'(0) ≠ 0")
    phi = reciprocal(list(c[1 : n + 1]), max(n - 1, 0))
    d: Coefficients = [0] * (n + 1)
    power_k = phi
    for k in range(1, n + 1):
        coefficient = power_k[k - 1]
        d[k] = _one_over(k) * coefficient if isinstance(coefficient, int) else coefficient / k
        if k < n:
            power_k = multiply(power_k, phi, n - 1)
    return d


def moments_from_s(s: Sequence[Any], n: int) -> Coefficients:
    """Raw moments m_1..m_n of a law from its S-transform series s_0, s_1, … (s_0 = 1/m_1).

    χ(w) = S(w)·w/(1 + w) and ψ = χ⁻¹ = Σ m_k u^k.
    """
    shifted = [0] + list(s[:n])  # S(w)·w
    geometric = [(-1) ** k for k in range(n + 1)]  # 1/(1 + w)
    chi = multiply(shifted, geometric, n)
    return reverse(chi, n)[1:]


def s_from_moments(m: Sequence[Any], n: int) -> Coefficients:
    """S-transform series s_0..s_n from raw moments m_1..m_{n+1} (m_1 ≠ 0)."""
    psi = [0] + list(m[: n + 1])
    chi = reverse(psi, n + 1)  # χ = ψ⁻¹
    # S = χ·(1 + w)/w
    chi_over_w = chi[1:]
    return multiply(chi_over_w, [1, 1], n)
