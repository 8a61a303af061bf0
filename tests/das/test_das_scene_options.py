"""The simulators' scene knobs as option objects: every former keyword works, unknown ones are refused."""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields

import numpy as np
import pytest

from terralab.das import halfspace, synthetic
from terralab.das.scene_options import BumpOptions, HalfspaceOptions
from terralab.errors import InvalidInputError

# the keyword arguments and defaults of the former signatures (before the knobs moved into option objects)
FORMER_TRAFFIC = {
    "duration_s": 120.0,
    "fs_hz": 1000.0,
    "dx_m": 1.0,
    "n_channels": 400,
    "start_time": "2024-05-01T08:00:00",
    "distance_start_m": 0.0,
    "vehicles": None,
    "rate_per_min": 12.0,
    "truck_fraction": 0.25,
    "speed_kmh": (60.0, 110.0),
    "speed_change": 0.15,
    "speed_change_fraction": 0.4,
    "platoon_fraction": 0.3,
    "overtaking_fraction": 0.1,
    "far_lane_coupling": (0.55, 0.85),
    "gauge_length_m": 4.0,
    "bump_width_m": 2.5,
    "span_m": None,
    "span_bending": 0.0,
    "strain_per_kn": 2e-08,
    "gain_spread": 0.35,
    "width_spread": 0.2,
    "white_noise": 5e-07,
    "coloured_noise": 4e-08,
    "coloured_corner_hz": 0.5,
    "correlation_length_m": 20.0,
    "common_mode_noise": 4e-08,
    "modes": (),
    "dead_channels": 2,
    "nan_channels": 1,
    "noisy_channels": 2,
    "scene_name": "custom",
    "seed": 0,
    "progress": False,
}
REQUIRED = inspect.Parameter.empty
FORMER_HALFSPACE = {
    **dict.fromkeys(
        ["duration_s", "fs_hz", "dx_m", "n_channels", "gauge_length_m", "lanes", "fibre_y_m", "depth_m"],
        REQUIRED,
    ),
    **dict.fromkeys(["young_pa", "poisson", "rayleigh_speed_ms", "quality_factor"], REQUIRED),
    **dict.fromkeys(["soil_shear_modulus_pa", "speed_kmh", "rate_per_min", "mix"], REQUIRED),
    "pavement": (),
    "platoon_fraction": 0.3,
    "speed_drift": 0.1,
    "signal": False,
    "side_streets": False,
    "tram": False,
    "coupling_range": (0.3, 1.0),
    "coupling_corr_m": 10.0,
    "white_noise": 5e-07,
    "coloured_noise": 3e-08,
    "coloured_exponent": 1.0,
    "noise_corr_m": 20.0,
    "burst_rate_per_min": 1.0,
    "burst_amplitude": 1e-06,
    "dead_channels": 1,
    "saturated_channels": 1,
    "nan_channels": 0,
    "vehicles": None,
    "start_time": "2024-06-01T07:30:00",
    "scene_name": "halfspace",
    "seed": 0,
    "progress": False,
}


def _accepted(func, options_cls) -> dict:
    """Every keyword ``func`` accepts (named or option) with its default (``REQUIRED`` where none)."""
    named = {
        n: p.default for n, p in inspect.signature(func).parameters.items() if p.kind is not p.VAR_KEYWORD
    }
    opts = {f.name: REQUIRED if f.default is MISSING else f.default for f in fields(options_cls)}
    assert not set(named) & set(opts), "a name is both a parameter and an option"
    return {**named, **opts}


@pytest.mark.parametrize(
    ("func", "options_cls", "former"),
    [
        (synthetic.traffic, BumpOptions, FORMER_TRAFFIC),
        (halfspace.halfspace_traffic, HalfspaceOptions, FORMER_HALFSPACE),
    ],
)
def test_every_former_keyword_is_accepted_with_its_former_default(func, options_cls, former):
    assert _accepted(func, options_cls) == former
    assert sum(p.kind is not p.VAR_KEYWORD for p in inspect.signature(func).parameters.values()) < 12


def test_knobs_given_by_their_former_names_still_shape_the_record():
    base = {"duration_s": 20.0, "n_channels": 30, "seed": 3}
    quiet, _ = synthetic.traffic(
        **base, rate_per_min=0.0, white_noise=1e-9, coloured_noise=0.0, common_mode_noise=0.0
    )
    loud, _ = synthetic.traffic(
        **base, rate_per_min=0.0, white_noise=1e-6, coloured_noise=0.0, common_mode_noise=0.0
    )
    live = np.isfinite(quiet.values).all(axis=0) & (quiet.values != 0).any(axis=0)
    assert np.nanstd(loud.values[:, live]) > 100 * np.nanstd(quiet.values[:, live])


def test_an_unknown_option_is_refused_with_the_names_there_are():
    with pytest.raises(
        InvalidInputError, match=r"traffic\(\) got unknown option\(s\) 'rate_per_minute'.*rate_per_min"
    ):
        synthetic.traffic(duration_s=5.0, n_channels=10, rate_per_minute=3.0)
    with pytest.raises(InvalidInputError, match=r"unknown option\(s\) 'noise'.*white_noise"):
        synthetic.urban_street(duration_s=5.0, noise=1e-6)
    params = halfspace.random_parameters("urban", 0)
    with pytest.raises(
        InvalidInputError, match=r"halfspace_traffic\(\) got unknown option\(s\) 'depth'.*depth_m"
    ):
        halfspace.halfspace_traffic(**params, depth=1.0)


def test_a_missing_required_half_space_option_is_refused_by_name():
    params = halfspace.random_parameters("urban", 0)
    del params["mix"], params["depth_m"]
    with pytest.raises(InvalidInputError, match=r"needs the option\(s\) 'depth_m', 'mix'.*halfspace_scene"):
        halfspace.halfspace_traffic(**params)
