"""Feedback sink: upserts records of stream ``feedback`` into the ``feedback`` table."""

from sluiceway.sinks.feedback.sink import FeedbackSink, FeedbackSinkConfig

__all__ = ["FeedbackSink", "FeedbackSinkConfig"]
