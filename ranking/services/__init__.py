"""Writes of the ranking app, one module per entity: ``fit_runs``, ``agreement_reports``, ``rounds``…

``fit_refit_requested`` and ``pool_answer_stored`` are re-exported here because they are the functions
the annotator app calls (when new judgments arrive; when a round's ranking is stored); everything else
is imported from its own module.
"""

from ranking.services.fit_runs import fit_refit_requested
from ranking.services.rounds import pool_answer_stored

__all__ = ["fit_refit_requested", "pool_answer_stored"]
