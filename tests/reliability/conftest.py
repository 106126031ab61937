"""Fixtures of the reliability tests."""
import pytest
from mmengine.logging import MMLogger


@pytest.fixture
def log(tmp_path, request):
    """MMEngine's current logger writes to a file; returns its reader."""
    path = tmp_path / 'run.log'
    MMLogger.get_instance(
        request.node.name, log_file=str(path), log_level='INFO')
    return path.read_text
