"""Training: the Lightning module, callbacks, schedule and the ``ssm-train`` / ``ssm-eval`` commands.

Recipe of S4 (arXiv 2111.00396) and the Long Range Arena (arXiv 2011.04006). Importing this package
needs only torch: the parts built on Lightning, Hydra and torchmetrics (``lit_module``, ``callbacks``,
``sampling``, ``train``, ``evaluate``) load when their modules are imported, e.g.
``from ssm.training.lit_module import SequenceLightningModule``. ``export_weights`` (torch-only)
writes a checkpoint's model as a weights-only file.
"""

from __future__ import annotations

from ssm.training.export import export_weights

__all__: list[str] = ["export_weights"]
