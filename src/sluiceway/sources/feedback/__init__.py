"""The feedback hub: signed webhooks, scheduled pulls of the platform connectors, tenants and
sources declared in the configuration and kept in the store."""

from sluiceway.sources.feedback.config import FeedbackSourceConfig
from sluiceway.sources.feedback.receiver import FeedbackHub

__all__ = ["FeedbackHub", "FeedbackSourceConfig"]
