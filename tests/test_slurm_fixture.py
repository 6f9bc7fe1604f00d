"""Without Slurm and without the right to install it, the cluster tests are skipped with one
line saying what to install, never errors (issue 13). Fast: no cluster is started."""
import pathlib

import pytest

import slurm_cluster


def test_missing_slurm_that_cannot_be_installed_skips(monkeypatch):
  monkeypatch.setattr(slurm_cluster, "INSTALLER", pathlib.Path("/bin/false"))
  monkeypatch.setattr(slurm_cluster, "CLIENTS", slurm_cluster.CLIENTS + ("no-such-slurm-tool",))
  with pytest.raises(pytest.skip.Exception, match="install with: apt-get install") as skipped:
    slurm_cluster._install_or_skip()
  assert "no-such-slurm-tool" in str(skipped.value) and "\n" not in str(skipped.value)
