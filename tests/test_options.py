"""terralab.options: the one check of ``**options`` against a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from terralab.errors import InvalidInputError
from terralab.options import options_from


def test_options_from_refuses_a_missing_required_option_and_adds_the_hint():
    @dataclass(frozen=True)
    class Scene:
        depth_m: float
        noise: float = 0.0

    assert options_from(Scene, {"depth_m": 1.0}, caller="scene") == Scene(depth_m=1.0)
    with pytest.raises(InvalidInputError, match=r"scene\(\) needs the option\(s\) 'depth_m'; see scene_help"):
        options_from(Scene, {"noise": 1.0}, caller="scene", hint="see scene_help")
    with pytest.raises(InvalidInputError, match=r"'deep'; its options are: depth_m, noise; see scene_help$"):
        options_from(Scene, {"deep": 1.0}, caller="scene", hint="see scene_help")
    assert options_from(Scene, {"noise": 2.0}, base=Scene(depth_m=3.0), caller="scene") == Scene(3.0, 2.0)
