"""Batch inference jobs: the Amazon Personalize-shaped control plane and the data plane that runs them."""

from __future__ import annotations
