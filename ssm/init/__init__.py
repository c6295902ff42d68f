"""Initializations shared by every model family: HiPPO matrices, their NPLR/DPLR form, diagonal inits.

HiPPO (arXiv 2008.07669), S4 (arXiv 2111.00396), S4D (arXiv 2206.11893), DSS (arXiv 2203.14343),
S5 (arXiv 2208.04933) and PTD (arXiv 2310.01698). ``python -m ssm.init`` prints each init's spectrum
and eigenvector conditioning; ``python -m ssm.init transfer`` compares every init's transfer function
with HiPPO-LegS's (:mod:`ssm.init.transfer`).
"""

from .diag import DIAG_INITS, diag_init
from .dplr import normal_eig, nplr
from .hippo import FORMS, MEASURES, hippo, rank_correction
from .transfer import hippo_transfer_function, omega_star, siso_system, transfer_function

__all__ = ["MEASURES", "FORMS", "DIAG_INITS", "hippo", "rank_correction", "nplr", "normal_eig", "diag_init",
           "transfer_function", "hippo_transfer_function", "siso_system", "omega_star"]
