"""Attachments sink: uploads the blobs records refer to, one object each."""

from sluiceway.sinks.attachments.sink import AttachmentsSink, AttachmentsSinkConfig

__all__ = ["AttachmentsSink", "AttachmentsSinkConfig"]
