"""Per-scene options of the two DAS traffic simulators, as frozen dataclasses.

:func:`terralab.das.synthetic.traffic` and :func:`terralab.das.halfspace.halfspace_traffic` take the record's
shape (duration, sampling, channels, start time), the vehicles, the seed and the progress switch as named
parameters; every physical knob of the scene (traffic, ground, fibre, noise) is a keyword argument checked
against :class:`BumpOptions` or :class:`HalfspaceOptions`. The knobs keep their names, so
``traffic(rate_per_min=20, white_noise=1e-6)`` works as it always did; a name that is no knob is refused with
the names that are.

>>> from terralab.das.scene_options import BumpOptions, scene_options
>>> opts = scene_options(BumpOptions, {"rate_per_min": 20.0}, "traffic")
>>> opts.rate_per_min, opts.truck_fraction
(20.0, 0.25)
>>> scene_options(BumpOptions, {"rate_per_minute": 20.0}, "traffic")
Traceback (most recent call last):
    ...
terralab.errors.InvalidInputError: traffic() got unknown option(s) 'rate_per_minute'; its options are: ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..options import options_from

__all__ = ["BumpOptions", "HalfspaceOptions", "scene_options"]

_O = TypeVar("_O", "BumpOptions", "HalfspaceOptions")


@dataclass(frozen=True)
class BumpOptions:
    """The scene knobs of :func:`terralab.das.synthetic.traffic` (see its docstring for their meaning)."""

    # traffic
    rate_per_min: float = 12.0
    truck_fraction: float = 0.25
    speed_kmh: tuple[float, float] = (60.0, 110.0)
    speed_change: float = 0.15
    speed_change_fraction: float = 0.4
    platoon_fraction: float = 0.3
    overtaking_fraction: float = 0.1
    far_lane_coupling: tuple[float, float] = (0.55, 0.85)
    # load, structure and fibre response
    gauge_length_m: float = 4.0
    bump_width_m: float = 2.5
    span_m: float | None = None
    span_bending: float = 0.0
    strain_per_kn: float = 2e-8
    gain_spread: float = 0.35
    width_spread: float = 0.2
    # noise, structural modes and bad channels
    white_noise: float = 5e-7
    coloured_noise: float = 4e-8
    coloured_corner_hz: float = 0.5
    correlation_length_m: float = 20.0
    common_mode_noise: float = 4e-8
    modes: Sequence[tuple[float, float, float]] = ()
    dead_channels: int = 2
    nan_channels: int = 1
    noisy_channels: int = 2


@dataclass(frozen=True)
class HalfspaceOptions:
    """The scene knobs of :func:`terralab.das.halfspace.halfspace_traffic` (meaning: its docstring and the
    module's).

    The fields without a default must be given (:func:`terralab.das.halfspace.random_parameters` draws them
    all for a site).
    """

    # fibre, ground and pavement
    gauge_length_m: float
    lanes: Sequence[tuple[int, float]]
    fibre_y_m: float
    depth_m: float
    young_pa: float
    poisson: float
    rayleigh_speed_ms: float
    quality_factor: float
    soil_shear_modulus_pa: float
    # traffic
    speed_kmh: tuple[float, float]
    rate_per_min: float
    mix: Mapping[str, float]
    pavement: Sequence[tuple[float, float]] = ()
    platoon_fraction: float = 0.3
    speed_drift: float = 0.1
    signal: bool = False
    side_streets: bool = False
    tram: bool = False
    # coupling, interrogator noise and bad channels
    coupling_range: tuple[float, float] = (0.3, 1.0)
    coupling_corr_m: float = 10.0
    white_noise: float = 5e-7
    coloured_noise: float = 3e-8
    coloured_exponent: float = 1.0
    noise_corr_m: float = 20.0
    burst_rate_per_min: float = 1.0
    burst_amplitude: float = 1e-6
    dead_channels: int = 1
    saturated_channels: int = 1
    nan_channels: int = 0


def scene_options(cls: type[_O], given: Mapping[str, Any], caller: str) -> _O:
    """``cls(**given)`` after checking the names: unknown ones and missing required ones are refused.

    Raises
    ------
    InvalidInputError
        A name that is no field of ``cls`` (the message lists the fields), or a required field not given.
    """
    return options_from(
        cls,
        given,
        caller=caller,
        hint="besides its named parameters (see its docstring); or draw a whole scene with "
        "terralab.das.halfspace.halfspace_scene(site, seed)",
    )
