"""Hydra configs of ``ssm-train``, installed as the package ``ssm.configs`` (loaded as ``pkg://ssm.configs``)."""
