"""Random weight matrices by ``torch.nn.init`` scheme name: the real init functions and a batched sampler.

Semantics are those of PyTorch 2.x (``torch/nn/init.py``). For a weight of shape ``(fan_out, fan_in)``
(``nn.Linear``) or ``(c_out, c_in, k, k)`` (``nn.Conv2d``, ``fan = channels × k²``):

=================== ============ ==================================== ==================================
scheme              ensemble     per-entry variance                   torch call
=================== ============ ==================================== ==================================
gaussian(σ_w²)      gaussian     σ_w²/fan_in                          ``normal_(0, √(σ_w²/fan_in))``
xavier_normal(g)    gaussian     2g²/(fan_in + fan_out)               ``xavier_normal_(gain=g)``
xavier_uniform(g)   uniform      2g²/(fan_in + fan_out)               ``xavier_uniform_(gain=g)``
kaiming_normal      gaussian     gain²/fan_mode                       ``kaiming_normal_(a, mode, nonl.)``
kaiming_uniform     uniform      gain²/fan_mode                       ``kaiming_uniform_(a, mode, nonl.)``
lecun_normal        gaussian     1/fan_in                             ``normal_(0, 1/√fan_in)``
lecun_uniform       uniform      1/fan_in                             ``uniform_(±√(3/fan_in))``
orthogonal(g)       orthogonal   g²/max(rows, cols)                   ``orthogonal_(gain=g)``
delta-orthogonal(g) d.-orth.     g² at the centre tap, 0 elsewhere    ``delta_orthogonal_(gain=g)``
torch_default       uniform      1/(3 fan_in)                         ``kaiming_uniform_(a=√5)``
=================== ============ ==================================== ==================================

(Glorot & Bengio 2010; He et al. 2015, arXiv 1502.01852; LeCun et al. 1998, "Efficient BackProp";
Saxe, McClelland & Ganguli 2014, arXiv 1312.6120; orthogonal sampling: QR of a Gaussian matrix with the
sign of ``diag R`` folded into ``Q`` — Haar measure, Mezzadri 2007, arXiv math-ph/0609050.)

An explicit ``sigma_w2`` overrides the scheme's scale: entries of variance ``σ_w²/fan_in`` drawn from the
chosen ensemble (``weights="gaussian"|"uniform"``), or ``√σ_w² ×`` a Haar (semi-)orthogonal matrix
(``weights="orthogonal"``), so tests can sit exactly on a critical point. Conv weights only:
``ensemble="delta_orthogonal"`` (built by :func:`rmt_init.montecarlo.network_jacobian_spectrum` for
``weights="delta_orthogonal"``) puts ``√σ_w² ×`` a Haar (semi-)orthogonal matrix at the centre tap and zeros
elsewhere (:func:`~rmt_init.montecarlo.delta_orthogonal.delta_orthogonal_`, Xiao et al. 2018, arXiv 1806.05393).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from rmt_init._validate import check_choice, check_real
from rmt_init._vocabulary import GAIN_NONLINEARITIES, INIT_ALIASES, INIT_ENSEMBLES, INIT_KWARGS, INITS, WEIGHT_ENSEMBLES

from ._device import linalg_threads
from .delta_orthogonal import delta_orthogonal_

__all__ = ["WeightInit", "weight_init", "sample_matrices", "fans", "GAIN_NONLINEARITIES"]


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shape, as ``torch.nn.init`` computes them (``receptive field × channels``)."""
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


@dataclass(frozen=True)
class WeightInit:
    """A weight initialisation: the ``torch.nn.init`` call and the ensemble/scale it implies.

    Attributes:
        name: canonical scheme name (``rmt_init._vocabulary.INITS``), or ``"explicit"`` when ``sigma_w2`` was given.
        ensemble: ``"gaussian"``, ``"uniform"``, ``"orthogonal"`` or (conv weights, explicit ``sigma_w2``)
            ``"delta_orthogonal"``.
        kwargs: keyword arguments passed to the torch init function (torch defaults filled in).
        sigma_w2: the explicit ``σ_w²`` (``None`` for a scheme's own scale).
    """

    name: str
    ensemble: str
    kwargs: dict[str, object] = field(default_factory=dict)
    sigma_w2: float | None = None

    def entry_std(self, shape: tuple[int, ...]) -> float:
        """Per-entry standard deviation torch uses for a weight of this shape (orthogonal: ``gain/√max(rows, cols)``)."""
        fan_in, fan_out = fans(shape)
        if self.sigma_w2 is not None:
            if self.ensemble == "delta_orthogonal":  # rms entry: ‖W‖_F² = σ_w² min(c_out, c_in), all taps
                return math.sqrt(self.sigma_w2 * min(shape[0], shape[1]) / (shape[0] * fan_in))
            if self.ensemble == "orthogonal":
                return math.sqrt(self.sigma_w2 / max(shape[0], fan_in))
            return math.sqrt(self.sigma_w2 / fan_in)
        n = self.name
        if n == "gaussian":
            return 1.0 / math.sqrt(fan_in)
        if n in ("xavier_normal", "xavier_uniform"):
            return float(self.kwargs["gain"]) * math.sqrt(2.0 / (fan_in + fan_out))
        if n in ("kaiming_normal", "kaiming_uniform"):
            gain = torch.nn.init.calculate_gain(self.kwargs["nonlinearity"], self.kwargs["a"])
            return gain / math.sqrt(fan_in if self.kwargs["mode"] == "fan_in" else fan_out)
        if n in ("lecun_normal", "lecun_uniform"):
            return 1.0 / math.sqrt(fan_in)
        if n == "orthogonal":
            return abs(float(self.kwargs["gain"])) / math.sqrt(max(shape[0], fan_in))
        # torch_default: kaiming_uniform_(a=√5): gain² = 2/(1 + 5) = 1/3
        return math.sqrt(1.0 / (3.0 * fan_in))

    def gain(self) -> float:
        """Orthogonal gain ``g`` (``W = g Q``); only for the orthogonal ensemble."""
        if self.sigma_w2 is not None:
            return math.sqrt(self.sigma_w2)
        return float(self.kwargs["gain"])

    def effective_sigma_w2(self, shape: tuple[int, ...]) -> float:
        """``σ_w² = fan_in × per-entry variance`` (the mean-field weight variance of this layer)."""
        fan_in, _ = fans(shape)
        return fan_in * self.entry_std(shape) ** 2

    def apply_(self, weight: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Initialise ``weight`` in place with the real ``torch.nn.init`` function (see the module table)."""
        init = torch.nn.init
        shape = tuple(weight.shape)
        with torch.no_grad():
            if self.ensemble == "delta_orthogonal":
                if weight.dim() < 3:
                    raise ValueError(
                        f"delta_orthogonal weights are for conv layers only; got a weight of shape {shape}"
                    )
                return delta_orthogonal_(weight, gain=self.gain(), generator=generator)
            if self.sigma_w2 is not None or self.name in ("gaussian", "lecun_normal", "lecun_uniform"):
                if self.ensemble == "orthogonal":
                    with linalg_threads(weight.device):
                        return init.orthogonal_(weight, gain=self.gain(), generator=generator)
                std = self.entry_std(shape)
                if self.ensemble == "uniform":
                    bound = math.sqrt(3.0) * std
                    return init.uniform_(weight, -bound, bound, generator=generator)
                return init.normal_(weight, 0.0, std, generator=generator)
            if self.name == "xavier_normal":
                return init.xavier_normal_(weight, gain=float(self.kwargs["gain"]), generator=generator)
            if self.name == "xavier_uniform":
                return init.xavier_uniform_(weight, gain=float(self.kwargs["gain"]), generator=generator)
            if self.name in ("kaiming_normal", "kaiming_uniform"):
                fn = init.kaiming_normal_ if self.name == "kaiming_normal" else init.kaiming_uniform_
                return fn(
                    weight,
                    a=float(self.kwargs["a"]),
                    mode=self.kwargs["mode"],
                    nonlinearity=self.kwargs["nonlinearity"],
                    generator=generator,
                )
            if self.name == "orthogonal":
                with linalg_threads(weight.device):
                    return init.orthogonal_(weight, gain=float(self.kwargs["gain"]), generator=generator)
            # torch_default: what nn.Linear / nn.Conv2d reset_parameters() does to the weight
            return init.kaiming_uniform_(weight, a=math.sqrt(5.0), generator=generator)

    def describe(self) -> dict[str, object]:
        """A flat, serialisable description for result configs."""
        d: dict[str, object] = {"init": self.name, "weights": self.ensemble}
        if self.sigma_w2 is not None:
            d["sigma_w2"] = self.sigma_w2
        for k, v in self.kwargs.items():
            d[f"init_{k}"] = v
        return d


def weight_init(
    init: str = "gaussian",
    *,
    sigma_w2: float | None = None,
    weights: str | None = None,
    init_kwargs: dict[str, object] | None = None,
    default_kwargs: dict[str, object] | None = None,
) -> WeightInit:
    """Validate an init specification and return a :class:`WeightInit`.

    ``init`` is a name from ``rmt_init._vocabulary.INITS`` (torch spelling with or without the trailing
    underscore, aliases such as ``"he_normal"`` accepted). ``init_kwargs`` are the torch function's own
    keyword arguments (``gain`` for xavier/orthogonal; ``a``, ``mode``, ``nonlinearity`` for kaiming);
    ``default_kwargs`` supplies defaults that differ from torch's (used by the network builders to match
    the kaiming gain to the activation). With ``sigma_w2`` the scheme's scale is replaced by ``σ_w²/fan_in``
    in the ensemble ``weights`` (default: the scheme's own ensemble); ``init="gaussian"`` without
    ``sigma_w2`` means ``σ_w² = 1``. Raises ``ValueError`` naming any bad value.
    """
    canon = check_choice("init", init, INITS, INIT_ALIASES)
    if sigma_w2 is not None:
        s2 = check_real("sigma_w2", sigma_w2, low=0.0, low_inclusive=False)
        ens = INIT_ENSEMBLES[canon] if weights is None else check_choice("weights", weights, WEIGHT_ENSEMBLES)
        if init_kwargs:
            raise ValueError(
                f"init_kwargs {sorted(init_kwargs)!r} cannot be combined with an explicit sigma_w2={sigma_w2!r}"
            )
        return WeightInit("explicit", ens, {"scheme": canon}, s2)
    if weights is not None:
        check_choice("weights", weights, WEIGHT_ENSEMBLES)
        raise ValueError(
            f"weights={weights!r} needs an explicit sigma_w2 (entries of variance sigma_w2/fan_in); "
            f"otherwise the ensemble is fixed by init={init!r}"
        )
    allowed = dict(INIT_KWARGS[canon])
    kwargs = {**allowed, **{k: v for k, v in (default_kwargs or {}).items() if k in allowed}}
    user = dict(init_kwargs or {})
    unknown = sorted(set(user) - set(allowed))
    if unknown:
        valid = ", ".join(repr(k) for k in allowed) or "none"
        raise ValueError(f"unknown init_kwargs {unknown!r} for init {canon!r}; valid arguments: {valid}")
    kwargs.update(user)
    if "gain" in kwargs:
        kwargs["gain"] = check_real("gain", kwargs["gain"])
    if "a" in kwargs:
        kwargs["a"] = check_real("a", kwargs["a"])
    if "mode" in kwargs:
        kwargs["mode"] = check_choice("mode", kwargs["mode"], ("fan_in", "fan_out"))
    if "nonlinearity" in kwargs:
        kwargs["nonlinearity"] = check_choice("nonlinearity", kwargs["nonlinearity"], GAIN_NONLINEARITIES)
    return WeightInit(canon, INIT_ENSEMBLES[canon], kwargs, None)


def sample_matrices(
    spec: WeightInit,
    count: int,
    n_out: int,
    n_in: int,
    *,
    generator: torch.Generator,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """``count`` independent ``n_out × n_in`` matrices of the scheme, in one batched draw: shape ``(count, n_out, n_in)``.

    Same laws as :meth:`WeightInit.apply_` (the torch functions initialise one tensor per call, which is
    too slow for 10⁴-factor products): Gaussian ``std · N(0, 1)``, uniform ``U(−√3 std, √3 std)``,
    orthogonal ``g · Q`` with ``Q`` from the QR of an i.i.d. Gaussian matrix (transposed when
    ``n_out < n_in``, as in ``torch.nn.init.orthogonal_``) and columns multiplied by ``sign(diag R)``.
    """
    shape = (n_out, n_in)
    if spec.ensemble == "orthogonal":
        rows, cols = (n_in, n_out) if n_out < n_in else (n_out, n_in)
        g = torch.randn((count, rows, cols), generator=generator, dtype=dtype, device=device)
        with linalg_threads(g.device):
            q, r = torch.linalg.qr(g)
        d = torch.diagonal(r, dim1=-2, dim2=-1).sign()
        d = torch.where(d == 0, torch.ones_like(d), d)
        q = q * d.unsqueeze(-2)
        if n_out < n_in:
            q = q.transpose(-2, -1)
        return q * spec.gain()
    std = spec.entry_std(shape)
    if spec.ensemble == "uniform":
        u = torch.rand((count, n_out, n_in), generator=generator, dtype=dtype, device=device)
        return (2.0 * u - 1.0) * (math.sqrt(3.0) * std)
    return torch.randn((count, n_out, n_in), generator=generator, dtype=dtype, device=device) * std
