from pathlib import Path

import pytest

from release_workspace import make_release_workspace, run_stage


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    """A tiny workspace with the release stage's inputs, after one successful run of the stage."""
    folder = make_release_workspace(tmp_path_factory.mktemp("release"))
    result = run_stage(folder)
    assert result.returncode == 0, result.stderr
    return folder
