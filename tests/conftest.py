"""Shared test fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_city_cache(tmp_path_factory):
    """Generation reads cities through the tile cache (default ~/.cache/occworld_tokyo/city): tests use their own."""
    import os

    old = os.environ.get("OCCWORLD_TOKYO_CACHE")
    os.environ["OCCWORLD_TOKYO_CACHE"] = str(tmp_path_factory.mktemp("city_cache"))
    yield
    if old is None:
        os.environ.pop("OCCWORLD_TOKYO_CACHE", None)
    else:
        os.environ["OCCWORLD_TOKYO_CACHE"] = old


@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared, loaded 2-core machine OpenMP spinning makes them
    many times slower; the setting is restored afterwards so other test modules are unaffected."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def occ3d_data(tmp_path_factory):
    """The same two sessions (a drone, then a rover; seed 3, 8 frames at 2 Hz, traffic on) generated on the default
    grid without sensors and on `--grid occ3d` with sensors: <root>/default and <root>/occ3d."""
    from occworld_tokyo.citymodel.sample_city import load_sample_city
    from occworld_tokyo.sessions.generate import GenerationSpec, generate_sessions
    from occworld_tokyo.world import build_voxel_world

    mesh = load_sample_city()
    world = build_voxel_world(mesh, progress=False)
    root = tmp_path_factory.mktemp("occ3d_data")
    for name, sensors in (("default", False), ("occ3d", True)):
        spec = GenerationSpec(frames=8, sessions=2, sensors=sensors, seed=3, grid=name)
        generate_sessions(root / name, spec=spec, progress=False, mesh=mesh, world=world)
    return root
