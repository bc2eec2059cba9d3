"""Compliance metrics for issues (issue 16): Definition of Ready, INVEST and Risk.

    catalogue.yaml  the metrics: description, scale, model prompts, the rules' checks
    catalogue.py    loading it strictly (the packaged file or the operator's own)
    rules.py        the offline, deterministic scorer over a metric's rule set
    model.py        the model scorer through the model gateway; its answer checked strictly
    records.py      the cached answer and the content hash it is keyed on
    ports.py        the cache's port (memory.py here; server/db/stores/compliance.py in SQL)
    service.py      ``ComplianceService.assess``: model, cache, fallback to the rules

The built-in tools ``estimate_compliance`` and ``improve_compliance``, the REST route
``GET /api/v1/issues/{issue}/compliance`` and ``preloop issues compliance`` all go through
``ComplianceService`` (``Hub.compliance``). See docs/search.md.
"""
