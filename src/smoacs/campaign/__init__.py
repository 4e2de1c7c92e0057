"""Campaigns: grids of ordinary runs on Ray (or local processes), and ``smoacs bench``, the paper's protocols.

* :mod:`smoacs.campaign.spec` — campaign files and their cells (configured by :func:`smoacs.options.run_config`,
  the function ``smoacs run`` uses);
* :mod:`smoacs.campaign.cell` — one cell through :func:`smoacs.runner.run`, retried through ``resume``;
* :mod:`smoacs.campaign.executor` — scheduling (the only module that imports ``ray``);
* :mod:`smoacs.campaign.report` — campaign.csv, campaign.md and plots;
* :mod:`smoacs.campaign.orchestrate` — :func:`run_campaign`;
* :mod:`smoacs.campaign.bench` — the built-in benchmark campaign.
"""

from __future__ import annotations

from smoacs.campaign.orchestrate import CampaignResult, run_campaign
from smoacs.campaign.spec import CampaignSpec, Cell, campaign_from_dict, cell_name, expand, load_campaign

__all__ = ["CampaignResult", "CampaignSpec", "Cell", "campaign_from_dict", "cell_name", "expand", "load_campaign",
           "run_campaign"]  # fmt: skip
