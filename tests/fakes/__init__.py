"""Fake third-party platforms (Play, X, Discourse, Intercom) as real local HTTP servers, and the
harness that drives a connector through ``run_pull`` against them."""
