"""Writes: every change to annotator data goes through a function here.

Functions are keyword-only and named ``entity_action``. Each runs in one transaction, validates its
input and raises a :mod:`annotator.errors` error that names the field at fault, so that nothing is ever
stored partly. One module per entity; this package re-exports their public functions, so callers
write ``from annotator import services`` and ``services.judgment_create(...)``:

- :mod:`~annotator.services.projects` — projects, their settings and their team (members and roles);
- :mod:`~annotator.services.items` — describing images already uploaded, retiring and restoring them;
- :mod:`~annotator.services.instructions` — instruction and consent versions;
- :mod:`~annotator.services.raters` — joining (with the capacity check), consent and its decline,
  demographics, acknowledging instructions, the rater's next step and completion;
- :mod:`~annotator.services.assignments` — which task a rater gets next, repeats, quality checks, expiry;
- :mod:`~annotator.services.checks` — quality checks (gold pairs, attention checks): making, retiring,
  scoring answers, screening out raters who fail too many;
- :mod:`~annotator.services.tasks` — task generation (pairs, one task per item);
- :mod:`~annotator.services.ranks` — rank tasks (k images ordered best → worst): generation, the shown
  order of an assignment, and the rater's ranking (stored through ``answers``);
- :mod:`~annotator.services.pools` — task pools kept apart from the project's stream (calibration rounds);
- :mod:`~annotator.services.answers` — the one skeleton that stores an answer (idempotency, locking,
  instructions check, counters), used by
- :mod:`~annotator.services.judgments` (pairwise answers) and
  :mod:`~annotator.services.annotations` (rich feedback and checklist answers and settings).
"""

from annotator.services.annotations import annotation_create, project_feedback_update
from annotator.services.assignments import assignment_next, assignments_expire
from annotator.services.checks import check_create, check_retire
from annotator.services.instructions import consent_version_create, instruction_version_create
from annotator.services.items import item_restore, item_retire, item_update
from annotator.services.judgments import judgment_create
from annotator.services.pools import pool_create_rank, pool_set_max_raters, pool_set_open
from annotator.services.projects import (
    membership_add,
    membership_change,
    membership_remove,
    membership_set,
    project_create,
    project_update,
)
from annotator.services.ranks import rank_answer_create, tasks_generate_rank
from annotator.services.raters import (
    RaterNext,
    demographics_submit,
    rater_acknowledge_instructions,
    rater_consent,
    rater_consent_decline,
    rater_join,
    rater_next,
    rater_next_after_answer,
    rater_staff_for_pool,
)
from annotator.services.tasks import (
    tasks_generate,
    tasks_generate_from_pairs,
    tasks_generate_random,
    tasks_generate_single,
    tasks_generate_within_prompt,
)

__all__ = [
    "RaterNext",
    "annotation_create",
    "assignment_next",
    "assignments_expire",
    "check_create",
    "check_retire",
    "consent_version_create",
    "demographics_submit",
    "instruction_version_create",
    "item_restore",
    "item_retire",
    "item_update",
    "judgment_create",
    "membership_add",
    "membership_change",
    "membership_remove",
    "membership_set",
    "pool_create_rank",
    "pool_set_max_raters",
    "pool_set_open",
    "project_create",
    "project_feedback_update",
    "project_update",
    "rank_answer_create",
    "rater_acknowledge_instructions",
    "rater_consent",
    "rater_consent_decline",
    "rater_join",
    "rater_next",
    "rater_next_after_answer",
    "rater_staff_for_pool",
    "tasks_generate",
    "tasks_generate_from_pairs",
    "tasks_generate_random",
    "tasks_generate_rank",
    "tasks_generate_single",
    "tasks_generate_within_prompt",
]
