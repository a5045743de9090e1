import os as _os, sys as _sys
# OpenMP reads its wait policy once, when torch first loads it: set here, before any module of the package imports torch,
# idle threads sleep instead of spinning, so a CPU shared with other work costs a share and not more (nbs/13a_infer.ipynb).
# A policy the user set is kept; `_omp_wait_policy` is the one torch's OpenMP runtime read (None: its default).
_omp_wait_policy = _os.environ.get("OMP_WAIT_POLICY") if "torch" in _sys.modules else None
if "torch" not in _sys.modules: _omp_wait_policy = _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
__version__ = "0.1.0"
