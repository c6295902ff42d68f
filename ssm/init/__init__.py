"""Initializations shared by every model family: HiPPO matrices, their NPLR/DPLR form, diagonal inits.

HiPPO (arXiv 2008.07669), S4 (arXiv 2111.00396), S4D (arXiv 2206.11893), DSS (arXiv 2203.14343),
S5 (arXiv 2208.04933) and PTD (arXiv 2310.01698). ``python -m ssm.init`` prints each init's spectrum
and eigenvector conditioning.
"""

from .diag import DIAG_INITS, diag_init
from .dplr import normal_eig, nplr
from .hippo import MEASURES, hippo, rank_correction

__all__ = ["MEASURES", "DIAG_INITS", "hippo", "rank_correction", "nplr", "normal_eig", "diag_init"]
