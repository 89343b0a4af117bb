"""The ``cluster`` command line's own options (not a command's)."""

import pytest

import cluster
from cluster.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"cluster {cluster.__version__}"
