"""Procedural generators for the two synthetic LRA tasks, writing the LRA on-disk layouts.

``python -m ssm.data.generate listops --out DIR --n 96000`` and
``python -m ssm.data.generate pathfinder --out DIR --resolution 32 --n 200000``.
ListOps: Nangia & Bowman, arXiv:1804.06028; Pathfinder: Linsley et al., arXiv:1805.08315;
LRA: Tay et al., arXiv:2011.04006.
"""

from .listops import ListOpsConfig, write_listops
from .pathfinder import PathfinderConfig, write_pathfinder

__all__ = ["ListOpsConfig", "PathfinderConfig", "write_listops", "write_pathfinder"]
