"""``sluice ship``: the exporter agent (a reimplementation of the Lightspeed → Dataverse exporter).

It collects ``*.json`` files from a directory, packs them into gzip tar archives and POSTs
them to an insights-ingress compatible endpoint, deleting only what was accepted.

Modules: ``config`` (keys, precedence, validation) · ``collect`` (scan, stability, chunking) ·
``archive`` (tar.gz writer) · ``upload`` (HTTP request, transient vs rejected) · ``cleanup``
(delete what was sent) · ``runner`` (cycles, retries, signals) · ``display`` (logs, progress
bar) · ``command`` (the CLI entry point). Nothing heavy is imported here.
"""
