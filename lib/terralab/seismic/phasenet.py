"""PhaseNet (Zhu & Beroza 2019) in PyTorch, loading the original 2019 TensorFlow weights.

The network is the 1-D U-Net of the original code: five levels (8, 16, 32, 64, 128 channels), kernel 7,
stride-4 down-sampling, transposed-convolution up-sampling with centre-cropped skip connections, and a
softmax over [noise, P, S]. TensorFlow's "same" padding is reproduced exactly (asymmetric for stride 4),
so the port agrees with the reference outputs to ~1e-5. See ``lib/terralab/data/seismic/WEIGHTS.md``.

This module imports torch at import time; ``import terralab.seismic`` does not import it.

Example
-------
>>> from terralab.seismic import load_phasenet
>>> model = load_phasenet()              # the shipped original weights, eval mode
>>> sum(p.numel() for p in model.parameters())
268443
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import DataNotAvailableError, FileFormatError

#: Number of samples of one PhaseNet window (30 s at 100 Hz).
WINDOW_SAMPLES = 3000
#: Sampling rate the network was trained at, in Hz.
SAMPLING_RATE_HZ = 100.0
#: Order of the input channels.
COMPONENTS = ("E", "N", "Z")
#: Order of the output channels.
PHASES = ("noise", "P", "S")

WEIGHTS_FILE = "phasenet_190703_weights.npz"
_BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon in the original model
_FILTERS = (8, 16, 32, 64, 128)
_KERNEL = 7
_STRIDE = 4


def _same_pad(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding (before, after) for a convolution over ``length`` samples."""
    out = math.ceil(length / stride)
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


def _folded(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm1d, out_dim: int):
    """Weights and bias of a convolution with the (eval-mode) batch norm after it folded in."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shape = [1] * weight.dim()
    shape[out_dim] = -1
    b = bias if bias is not None else torch.zeros_like(bn.running_mean)
    return weight * scale.reshape(shape), bn.bias + (b - bn.running_mean) * scale


class _ConvBN(nn.Module):
    """Convolution (TF "same" padding) → batch norm → ReLU.

    In eval mode the batch norm is folded into the convolution and stride-1 padding is done by the
    convolution itself: the same numbers, about twice as fast on CPU.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, bias: bool = False):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv1d(c_in, c_out, _KERNEL, stride=stride, bias=bias)
        self.bn = nn.BatchNorm1d(c_out, eps=_BN_EPS, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            x = F.pad(x, _same_pad(x.shape[-1], _KERNEL, self.stride))
            return F.relu(self.bn(self.conv(x)))
        weight, bias = _folded(self.conv.weight, self.conv.bias, self.bn, 0)
        if self.stride == 1:  # TF "same" with stride 1 is symmetric: (K-1)/2 on each side
            return F.relu_(F.conv1d(x, weight, bias, padding=(_KERNEL - 1) // 2))
        x = F.pad(x, _same_pad(x.shape[-1], _KERNEL, self.stride))
        return F.relu_(F.conv1d(x, weight, bias, stride=self.stride))


def _polyphase_transposed(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Full stride-4 transposed convolution (length 4(n+1), of which the first (n-1)*4+7 are the usual output)
    computed as one ordinary convolution with 4× the output channels, interleaved afterwards.

    Output sample 4q + r receives x[q]·w[r] + x[q−1]·w[r+4]: a 2-tap convolution per phase r. On CPU this is
    several times faster than ``conv_transpose1d`` for PhaseNet's shapes, with the same result.
    """
    c_in, c_out, k = weight.shape
    taps = torch.zeros(_STRIDE, c_out, c_in, 2, dtype=weight.dtype, device=weight.device)
    for r in range(_STRIDE):
        taps[r, :, :, 1] = weight[:, :, r].T
        if r + _STRIDE < k:
            taps[r, :, :, 0] = weight[:, :, r + _STRIDE].T
    n = x.shape[-1]
    y = F.conv1d(F.pad(x, (1, 1)), taps.reshape(_STRIDE * c_out, c_in, 2), bias.repeat(_STRIDE))
    y = y.reshape(x.shape[0], _STRIDE, c_out, n + 1).permute(0, 2, 3, 1)
    return y.reshape(x.shape[0], c_out, _STRIDE * (n + 1))


class _UpConvBN(nn.Module):
    """Transposed convolution (stride 4, TF "same": output 4N) → batch norm → ReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.ConvTranspose1d(c_in, c_out, _KERNEL, stride=_STRIDE, bias=False)
        self.bn = nn.BatchNorm1d(c_out, eps=_BN_EPS, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        # The full transposed output has (n-1)*4+7 samples; TF "same" keeps 4n of them, starting at the
        # forward convolution's pad_before: (7-4)//2 = 1.
        before = (_KERNEL - _STRIDE) // 2
        if self.training:
            y = self.conv(x)
            return F.relu(self.bn(y[..., before : before + n * _STRIDE]))
        weight, bias = _folded(self.conv.weight, None, self.bn, 1)
        return F.relu_(_polyphase_transposed(x, weight, bias)[..., before : before + n * _STRIDE])


class PhaseNet(nn.Module):
    """The original PhaseNet U-Net; input (batch, 3 [E,N,Z], time), output probabilities
    (batch, 3 [noise,P,S], time).

    Inputs must be normalised per window and channel (zero mean, unit standard deviation), as
    :func:`normalize_windows` does. Any length works; the weights were trained on 3000 samples at 100 Hz.
    """

    def __init__(self):
        super().__init__()
        f = _FILTERS
        self.input = _ConvBN(3, f[0], bias=True)
        self.down_conv = nn.ModuleList(_ConvBN(f[max(d - 1, 0)], f[d]) for d in range(len(f)))
        self.down_pool = nn.ModuleList(_ConvBN(f[d], f[d], stride=_STRIDE) for d in range(len(f) - 1))
        self.up_conv = nn.ModuleList(_UpConvBN(f[d + 1], f[d]) for d in range(len(f) - 1))
        self.up_merge = nn.ModuleList(_ConvBN(2 * f[d], f[d]) for d in range(len(f) - 1))
        self.output = nn.Conv1d(f[0], len(PHASES), 1, bias=True)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores before the softmax (what training losses want)."""
        x = self.input(x)
        skips = []
        for d, conv in enumerate(self.down_conv):
            x = conv(x)
            skips.append(x)
            if d < len(self.down_pool):
                x = self.down_pool[d](x)
        for d in range(len(self.up_conv) - 1, -1, -1):
            x = self.up_conv[d](x)
            skip = skips[d]
            offset = (x.shape[-1] - skip.shape[-1]) // 2
            x = torch.cat([skip, x[..., offset : offset + skip.shape[-1]]], dim=1)
            x = self.up_merge[d](x)
        return self.output(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.forward_logits(x), dim=1)


def _tf_to_torch_names() -> dict[str, tuple[str, str]]:
    """Map each TF variable prefix to (torch module path, kind) where kind is conv / tconv / bn."""
    table: dict[str, tuple[str, str]] = {
        "Input/input_conv": ("input.conv", "conv"),
        "Input/input_bn": ("input.bn", "bn"),
        "Output/output_conv": ("output", "conv"),
    }
    for d in range(len(_FILTERS)):
        table[f"DownConv_{d}/down_conv1_{d + 1}"] = (f"down_conv.{d}.conv", "conv")
        table[f"DownConv_{d}/down_bn1_{d + 1}"] = (f"down_conv.{d}.bn", "bn")
        if d < len(_FILTERS) - 1:
            table[f"DownConv_{d}/down_conv3_{d + 1}"] = (f"down_pool.{d}.conv", "conv")
            table[f"DownConv_{d}/down_bn3_{d + 1}"] = (f"down_pool.{d}.bn", "bn")
            table[f"UpConv_{d}/up_conv0_{d + 1}"] = (f"up_conv.{d}.conv", "tconv")
            table[f"UpConv_{d}/up_bn0_{d + 1}"] = (f"up_conv.{d}.bn", "bn")
            table[f"UpConv_{d}/up_conv1_{d + 1}"] = (f"up_merge.{d}.conv", "conv")
            table[f"UpConv_{d}/up_bn1_{d + 1}"] = (f"up_merge.{d}.bn", "bn")
    return table


def state_dict_from_tf(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Convert the TF variables of the original checkpoint into a :class:`PhaseNet` state dict.

    Parameters
    ----------
    arrays : dict
        TF variable name → array, e.g. ``dict(np.load("phasenet_190703_weights.npz"))``.
    """
    state: dict[str, torch.Tensor] = {}
    used = set()
    for prefix, (module, kind) in _tf_to_torch_names().items():

        def take(name: str, prefix: str = prefix) -> np.ndarray:
            key = f"{prefix}/{name}"
            if key not in arrays:
                raise FileFormatError(
                    f"PhaseNet weights lack the array {key!r}; this is not the original 190703 checkpoint "
                    "converted to npz (see WEIGHTS.md for the expected names)"
                )
            used.add(key)
            return np.asarray(arrays[key], dtype=np.float32)

        if kind in ("conv", "tconv"):
            kernel = take("kernel")
            # TF (K, 1, Cin, Cout) → torch Conv1d (Cout, Cin, K); TF transposed (K, 1, Cout, Cin) →
            # torch ConvTranspose1d (Cin, Cout, K): the same transpose, no flip (WEIGHTS.md).
            state[f"{module}.weight"] = torch.from_numpy(
                np.ascontiguousarray(kernel[:, 0].transpose(2, 1, 0))
            )
            if f"{prefix}/bias" in arrays:
                state[f"{module}.bias"] = torch.from_numpy(take("bias"))
        else:
            state[f"{module}.weight"] = torch.from_numpy(take("gamma"))
            state[f"{module}.bias"] = torch.from_numpy(take("beta"))
            state[f"{module}.running_mean"] = torch.from_numpy(take("moving_mean"))
            state[f"{module}.running_var"] = torch.from_numpy(take("moving_variance"))
            state[f"{module}.num_batches_tracked"] = torch.tensor(0)
    unused = set(arrays) - used
    if unused:
        raise FileFormatError(
            f"PhaseNet weights hold {len(unused)} arrays this architecture does not use "
            f"(e.g. {min(unused)!r}); the file is not the original PhaseNet checkpoint"
        )
    return state


def default_weights_path() -> Path:
    """Path of the PhaseNet weights shipped inside the package (lib/terralab/data/seismic/)."""
    return Path(__file__).resolve().parents[1] / "data" / "seismic" / WEIGHTS_FILE


def load_phasenet(path: str | os.PathLike | None = None, device: str = "cpu") -> PhaseNet:
    """The original pretrained PhaseNet as a ``torch.nn.Module`` in eval mode.

    Parameters
    ----------
    path : path, optional
        The weights: the original TF arrays as npz (``phasenet_190703_weights.npz``), or a torch
        checkpoint written by :func:`terralab.seismic.train.train_phasenet` (``.pt``). Default: the copy
        shipped with terralab, so this works offline.
    device : str
        Torch device, ``"cpu"`` by default.

    Example
    -------
    >>> import torch
    >>> model = load_phasenet()
    >>> prob = model(torch.zeros(1, 3, 3000))     # softmax over noise, P, S
    >>> tuple(prob.shape)
    (1, 3, 3000)
    """
    path = Path(path) if path is not None else default_weights_path()
    if not path.exists():
        raise DataNotAvailableError(
            f"PhaseNet weights not found at {path}; pass the path of phasenet_190703_weights.npz "
            "(terralab.catalog.fetch('seismic_phasenet_weights')) or of a checkpoint from train_phasenet"
        )
    model = PhaseNet()
    if path.suffix == ".pt":
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several unrelated types for a bad file
            raise FileFormatError(f"cannot read the PhaseNet checkpoint {path}: {exc}") from exc
        state = checkpoint.get("model_state", checkpoint) if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            raise FileFormatError(f"{path} is not a PhaseNet checkpoint (no model_state dict)")
    else:
        try:
            with np.load(path) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except Exception as exc:
            raise FileFormatError(f"cannot read PhaseNet weights {path} as npz: {exc}") from exc
        state = state_dict_from_tf(arrays)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise FileFormatError(f"{path} does not match the PhaseNet architecture: {exc}") from exc
    return model.to(device).eval()


def normalize_windows(x: torch.Tensor) -> torch.Tensor:
    """Demean each window and channel and divide by its standard deviation (zero std counts as 1).

    NaN marks missing samples: mean and standard deviation are taken over the valid ones and missing samples
    become 0 (without NaN this is exactly PhaseNet's normalisation).

    Parameters
    ----------
    x : torch.Tensor (batch, channel, time)
    """
    valid = ~torch.isnan(x)
    if bool(valid.all()):
        x = x - x.mean(dim=-1, keepdim=True)
        std = x.std(dim=-1, keepdim=True, unbiased=False)
    else:
        count = valid.sum(dim=-1, keepdim=True).clamp(min=1)
        x0 = torch.where(valid, x, torch.zeros_like(x))
        mean = x0.sum(dim=-1, keepdim=True) / count
        x = torch.where(valid, x - mean, torch.zeros_like(x))
        std = torch.sqrt((x * x).sum(dim=-1, keepdim=True) / count)
    return x / torch.where(std == 0, torch.ones_like(std), std)
