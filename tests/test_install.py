"""A plain, non-editable install (`pip install --target`) runs the commands from any folder: the configs ship
inside the package (occworld_tokyo/configs/, the repository's config/ links there)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_installed_package_finds_its_configs_from_any_folder(tmp_path: Path) -> None:
    target, elsewhere, source = tmp_path / "site", tmp_path / "elsewhere", tmp_path / "source"
    elsewhere.mkdir()
    # build from a copy of what the package is made of, so the build leaves nothing in the checkout
    shutil.copytree(ROOT / "occworld_tokyo", source / "occworld_tokyo",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                            "--no-compile", "--target", str(target), str(source)], capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    assert (target / "occworld_tokyo" / "configs" / "_base_" / "model_tokyo.py").is_file()
    env = {**os.environ, "PYTHONPATH": str(target)}
    cli = [sys.executable, str(target / "bin" / "occworld-tokyo")]
    where = subprocess.run([sys.executable, "-c", "import occworld_tokyo; print(occworld_tokyo.__file__)"],
                           capture_output=True, text=True, env=env, cwd=elsewhere)
    assert where.stdout.startswith(str(target)), where.stdout  # the installed copy, not the checkout
    model = subprocess.run([*cli, "model", "--config", "config/tiny_vqvae.py"], capture_output=True, text=True,
                           env=env, cwd=elsewhere, timeout=300)
    assert model.returncode == 0 and "total" in model.stdout, model.stderr[-2000:]
    # the guide's default config path resolves to the packaged file; the run then stops at the (missing) data
    train = subprocess.run([*cli, "train", "--work-dir", str(tmp_path / "w"), "--cfg-options",
                            f"data_root={tmp_path / 'no_data'}"], capture_output=True, text=True, env=env,
                           cwd=elsewhere, timeout=300)
    assert train.returncode == 2 and "no_data does not exist" in train.stderr, train.stderr[-2000:]
    assert "config file not found" not in train.stderr
