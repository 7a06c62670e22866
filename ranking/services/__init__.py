"""Writes of the ranking app, one module per entity: ``fit_runs``, ``agreement_reports``.

``fit_refit_requested`` is re-exported here because it is the one function the annotator app
calls (when new judgments arrive); everything else is imported from its own module.
"""

from ranking.services.fit_runs import fit_refit_requested

__all__ = ["fit_refit_requested"]
