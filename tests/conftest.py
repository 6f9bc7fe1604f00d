# The real local Slurm cluster fixture (tests/slurm_cluster.py) for tests marked `slurm`.
pytest_plugins = ["slurm_cluster"]
