"""The ``preloop`` command line. Heavy modules are imported inside commands so ``--help`` is
instant; file commands (validate, eval, test) work offline, the rest are API clients."""
