"""The feedback hub's shared layer: the normalised item, the pull helper, the connector table."""
