"""Sources: receivers (HTTP push), connectors (pull) and collectors (scan). One folder each."""
