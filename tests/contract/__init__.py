"""The storage contract suite: one set of tests, every backend."""
