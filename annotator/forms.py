"""Browser forms (researcher and rater pages).

Forms check what a browser can get wrong (types, ranges, lengths) and name the field; the services
check everything again and have the last word (their errors are attached to the field they name).
"""

import json

from django import forms
from django.core.validators import RegexValidator

from annotator.feedback import LIKERT_MAX, LIKERT_MIN
from annotator.models import (
    DEMOGRAPHIC_FIELDS,
    RANK_MAX_ITEMS,
    RANK_MIN_ITEMS,
    AdaptiveTarget,
    Demographics,
    Role,
)
from annotator.services.checks import MAX_INSTRUCTION_CHARS
from annotator.services.items import MAX_METADATA_CHARS, MAX_MODEL_CHARS, MAX_PROMPT_CHARS
from annotator.services.projects import (
    MAX_CHECK_FAIL_LIMIT,
    MAX_CHECK_RATE,
    MAX_RADIUS,
    MAX_REPEAT_RATE,
    MAX_TASKS_PER_RATER,
    MIN_RADIUS,
)


class ProjectForm(forms.Form):
    """A new project (created closed: it opens to raters in its settings, once consent and instructions exist)."""

    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=64, required=False, help_text="Leave blank to derive it from the name.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    overlap = forms.IntegerField(min_value=1, max_value=100, initial=3, help_text="Judgments wanted per pair.")
    tasks_per_rater = forms.IntegerField(min_value=0, initial=0, help_text="0: as many as are left.")
    repeat_rate = forms.FloatField(
        min_value=0, max_value=0.5, initial=0, required=False,
        help_text="Share of a rater's tasks that re-show a pair they answered, sides swapped, to measure "
                  "intra-rater consistency (0–0.5; 0: none). Repeats take no overlap slot and are left out of fits.",
    )
    completion_redirect_url = forms.URLField(required=False, assume_scheme="https", help_text="e.g. the crowd platform's completion URL.")


    def clean_repeat_rate(self) -> float:
        value = self.cleaned_data.get("repeat_rate")
        return 0.0 if value is None else value


class MultipleFileInput(forms.FileInput):
    """A file input that lets the browser pick several files (renders ``multiple``)."""

    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several uploaded files; cleans to a list (empty when none was chosen and none is required)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = [f for f in (data if isinstance(data, (list, tuple)) else [data]) if f]
        if not files:
            if self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return []
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


class UploadForm(forms.Form):
    files = MultipleFileField(
        required=False,
        widget=MultipleFileInput(attrs={"accept": ".png,.jpg,.jpeg,.webp,.gif,.zip,.csv,.jsonl"}),
        help_text="Images and/or ZIP archives (a ZIP may contain manifest.csv or manifest.jsonl). "
                  "Choose several at once.",
    )
    manifest = forms.FileField(
        required=False,
        help_text="CSV or JSONL with columns file, prompt, model, metadata. It may also describe images "
                  "uploaded earlier (by file name or sha256) to change their prompt, model or metadata.")

    def clean(self):
        data = super().clean()
        if not data.get("files") and not data.get("manifest") and "files" not in self.errors:
            self.add_error("files", "Choose image files, a ZIP archive or a manifest.")
        return data


class InstructionForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 14}), help_text="Markdown. Saving makes a new version.")


class TaskGenerateForm(forms.Form):
    strategy = forms.ChoiceField(choices=[
        ("within_prompt", "All pairs within each prompt"),
        ("random", "Random pairs (budget)"),
        ("pairs", "Uploaded pair list"),
        ("adaptive", "Adaptive: where they tell the most (budget; needs a fit)"),
        ("rank", "Rank tasks: k images to order best → worst"),
    ])
    budget = forms.IntegerField(min_value=1, required=False)
    target = forms.ChoiceField(choices=AdaptiveTarget.choices, required=False,
                               label="Adaptive pairs rank", initial="items")
    same_prompt = forms.BooleanField(required=False, label="Only within a prompt (random pairs, rank tasks)")
    pair_list = forms.FileField(required=False, help_text="CSV with two columns: item A, item B (file name, sha256 or id).")
    k = forms.IntegerField(min_value=RANK_MIN_ITEMS, max_value=RANK_MAX_ITEMS, required=False,
                           label="Images per rank task (k)", help_text=f"{RANK_MIN_ITEMS}–{RANK_MAX_ITEMS}.")
    n_tasks = forms.IntegerField(min_value=1, required=False, label="Number of rank tasks")
    overlap = forms.IntegerField(min_value=1, max_value=100, required=False, help_text="Judgments wanted per task.")


#: The rater-facing wording of the demographic questions, where it differs from the field's own label.
DEMOGRAPHIC_QUESTIONS = {
    "country": {"help_text": 'Where you live (or "prefer not to say").'},
    "languages": {"help_text": "Languages you speak fluently."},
    "age_band": {"label": "Age"},
    "expertise": {"label": "Visual expertise"},
    "device": {"label": "Device you are using"},
}


def _demographic_question(name: str) -> forms.Field:
    """The form field of one demographic question: the model field's choices or length, always optional."""
    model_field = Demographics._meta.get_field(name)
    wording = DEMOGRAPHIC_QUESTIONS.get(name, {})
    if model_field.choices:
        return forms.ChoiceField(choices=[("", "—"), *model_field.choices], required=False, **wording)
    return forms.CharField(max_length=model_field.max_length, required=False, **wording)


class DemographicsForm(forms.Form):
    """Every demographic question (:data:`annotator.models.DEMOGRAPHIC_FIELDS`, in order); all optional."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in DEMOGRAPHIC_FIELDS:
            self.fields[name] = _demographic_question(name)


class SingleTaskGenerateForm(forms.Form):
    kind = forms.ChoiceField(choices=[("rich", "Rich feedback: points, misaligned words, scores"),
                                      ("checklist", "Checklist: yes/no questions")])
    overlap = forms.IntegerField(min_value=1, max_value=100, required=False,
                                 help_text="Raters per image (RichHF-18K used 3).")


# Project settings --------------------------------------------------------------------------------------

_code = RegexValidator(r"^[A-Za-z0-9_-]{1,64}$", "Use 1 to 64 letters, digits, '-' or '_'.")


class StudySettingsForm(forms.Form):
    """The project's settings (:func:`annotator.services.project_update` checks them again)."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=5000)
    is_open = forms.BooleanField(
        required=False, label="Open to raters",
        help_text="Raters can join with the invite or crowd link. Needs a consent text and instructions.")
    overlap = forms.IntegerField(min_value=1, max_value=100, label="Overlap (raters per task)",
                                 help_text="Judgments wanted per task; a task is handed to at most this many raters.")
    tasks_per_rater = forms.IntegerField(
        min_value=0, max_value=MAX_TASKS_PER_RATER, label="Tasks per rater",
        help_text="A rater is done after this many tasks (repeats not counted); 0: until none are left.")
    repeat_rate = forms.FloatField(
        min_value=0, max_value=MAX_REPEAT_RATE, label="Repeat rate",
        widget=forms.NumberInput(attrs={"step": "0.01"}),
        help_text=f"Share of a rater's tasks that re-show a pair they answered, sides swapped (0–{MAX_REPEAT_RATE}); "
                  "measures intra-rater consistency. Repeats take no overlap slot and are left out of fits.")
    check_rate = forms.FloatField(
        min_value=0, max_value=MAX_CHECK_RATE, label="Check rate", required=False,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
        help_text=f"Share of a rater's assignments that are quality checks — gold pairs and attention checks — "
                  f"while a task is left (0–{MAX_CHECK_RATE}; 0: none). Each rater sees a check at most once; "
                  "answers are scored, never counted as data.")
    check_fail_limit = forms.IntegerField(
        min_value=0, max_value=MAX_CHECK_FAIL_LIMIT, label="Screen out after failed checks", required=False,
        help_text="A rater who fails this many checks is excluded, gets no more tasks and no completion code "
                  "(0: never screen out).")
    adaptive_batch = forms.IntegerField(
        min_value=0, max_value=100_000, label="Adaptive pairs per batch",
        help_text="After each fit, when fewer open places than this are left, add this many new pairs chosen where "
                  "they shrink the uncertainty most (0: off).")
    adaptive_target = forms.ChoiceField(
        choices=AdaptiveTarget.choices, label="Adaptive pairs rank",
        help_text="Images: pairs that sharpen the image leaderboard; source models: pairs that sharpen the model one.")
    allow_tie = forms.BooleanField(
        required=False, label="Offer “about the same” on pairwise tasks",
        help_text="Stored as a tie (↓ key). Off: raters must choose left or right.")
    effective_radius = forms.FloatField(
        min_value=MIN_RADIUS, max_value=MAX_RADIUS, label="Effective radius (fraction of image height)",
        widget=forms.NumberInput(attrs={"step": "0.005"}),
        help_text="Rich feedback: each point marks a disk of this radius (RichHF-18K: 0.05). Changing it "
                  "redraws every heatmap.")
    completion_code = forms.CharField(
        max_length=64, validators=[_code],
        help_text="Shown to raters who finish (or sent as cc= to the completion URL).")
    completion_redirect_url = forms.URLField(
        required=False, assume_scheme="https", label="Completion URL",
        help_text="e.g. https://app.prolific.com/submissions/complete — raters who finish are sent here "
                  "with cc=<code>; crowd participants who find the study full or decline consent are sent "
                  "here with the codes below.")
    no_places_code = forms.CharField(
        max_length=64, required=False, validators=[_code], label="“No places” code",
        help_text="For a crowd participant who arrives when every place is taken (e.g. a Prolific "
                  "“return” code). Blank: they are shown a message only.")
    consent_declined_code = forms.CharField(
        max_length=64, required=False, validators=[_code], label="“Consent declined” code",
        help_text="For a crowd participant who does not consent. Blank: they are shown a message only.")
    screened_out_code = forms.CharField(
        max_length=64, required=False, validators=[_code], label="“Screened out” code",
        help_text="For a crowd participant screened out after failed quality checks (they never get the "
                  "completion code). Blank: they are shown a message only.")

    def clean_repeat_rate(self) -> float:
        value = self.cleaned_data.get("repeat_rate")
        return 0.0 if value is None else value

    def clean_check_rate(self) -> float:
        value = self.cleaned_data.get("check_rate")
        return 0.0 if value is None else value  # left blank: no checks

    def clean_check_fail_limit(self) -> int:
        value = self.cleaned_data.get("check_fail_limit")
        return 0 if value is None else value  # left blank: never screen out


class _RowForm(forms.Form):
    """A row of an editable list: a new (extra) row counts as filled in only when a content field is."""

    def has_changed(self) -> bool:
        return any(name not in ("ORDER", "DELETE") for name in self.changed_data)


_NAME = RegexValidator(r"^[a-z][a-z0-9_]{0,39}$", "Lower-case letters, digits or _ (starting with a letter).")


class LikertDimensionForm(_RowForm):
    name = forms.CharField(max_length=40, validators=[_NAME],
                           help_text="Stored with every score, e.g. aesthetics.")
    label = forms.CharField(max_length=80, help_text="What raters read, e.g. Aesthetics.")
    low = forms.CharField(max_length=120, required=False, label=f"Meaning of {LIKERT_MIN}")
    high = forms.CharField(max_length=120, required=False, label=f"Meaning of {LIKERT_MAX}")
    key = forms.CharField(max_length=1, min_length=1, label="Key",
                          help_text="The letter that selects this score (not A, M, Y or N).")

    def clean_key(self) -> str:
        key = self.cleaned_data["key"].lower()
        if not key.isalpha() or key in "amyn":
            raise forms.ValidationError("One letter other than A, M, Y and N (those keys mark points and answer "
                                        "checklists).")
        return key


class ChecklistQuestionForm(_RowForm):
    id = forms.CharField(max_length=40, validators=[_NAME], label="Id", help_text="Stored with every answer.")
    dimension = forms.CharField(max_length=60, help_text="Questions are grouped by it, e.g. alignment.")
    question = forms.CharField(max_length=300, widget=forms.TextInput(attrs={"size": 48}))
    required = forms.BooleanField(required=False, initial=True, help_text="Raters must answer it.")


class _RowsFormSet(forms.BaseFormSet):
    """Rows that can be added, removed (DELETE) and reordered (ORDER); ``rows()`` gives them in order."""

    unique: tuple[tuple[str, str], ...] = ()  # (field, what it is called in messages)
    row_name = "Row"

    def clean(self):
        if any(self.errors):
            return
        rows = self._kept()
        for field, what in self.unique:
            seen: dict[str, int] = {}
            for number, form in rows:
                value = form.cleaned_data[field]
                if value in seen:
                    raise forms.ValidationError(
                        f"{self.row_name}s {seen[value]} and {number} have the same {what} '{value}'.")
                seen[value] = number

    def _kept(self) -> list[tuple[int, forms.Form]]:
        """(row number as shown, form) of every row kept, in the chosen order."""
        numbered = {id(form): n for n, form in enumerate(self.forms, start=1)}
        return [(numbered[id(form)], form) for form in self.ordered_forms]

    def rows(self) -> list[dict]:
        return [{k: v for k, v in form.cleaned_data.items() if k not in ("ORDER", "DELETE")}
                for _, form in self._kept()]


class LikertDimensionFormSet(_RowsFormSet):
    unique = (("name", "name"), ("key", "key"))
    row_name = "Row"

    def clean(self):
        super().clean()
        if not any(self.errors) and not self._kept():
            raise forms.ValidationError("Keep at least one score dimension.")


class ChecklistFormSet(_RowsFormSet):
    unique = (("id", "id"),)
    row_name = "Row"


LikertFormSet = forms.formset_factory(
    LikertDimensionForm, formset=LikertDimensionFormSet, extra=1, can_delete=True, can_order=True,
    max_num=12, validate_max=True, absolute_max=50)
ChecklistQuestionsFormSet = forms.formset_factory(
    ChecklistQuestionForm, formset=ChecklistFormSet, extra=1, can_delete=True, can_order=True,
    max_num=200, validate_max=True, absolute_max=400)


class ConsentForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}), max_length=50_000,
        help_text="Markdown. Saving makes a new version; raters who agreed to an earlier one are asked again.")


# Team -------------------------------------------------------------------------------------------------


class MemberAddForm(forms.Form):
    user = forms.CharField(max_length=254, label="Username or email",
                           help_text="The person needs an account; an administrator creates it in the admin.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER,
                             help_text="Researchers change the project; viewers only look.")


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


# Images -----------------------------------------------------------------------------------------------


class JSONObjectField(forms.CharField):
    """A JSON object typed into a textarea; cleans to a dict ('' is {})."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return value if isinstance(value, str) else json.dumps(value or {}, indent=2, ensure_ascii=False)

    def to_python(self, value):
        value = super().to_python(value)
        if len(value) > MAX_METADATA_CHARS:
            raise forms.ValidationError(f"At most {MAX_METADATA_CHARS:,} characters.")
        try:
            parsed = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError('Must be a JSON object, e.g. {"seed": 7}.')
        return parsed


class ItemEditForm(forms.Form):
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=MAX_PROMPT_CHARS)
    source_model = forms.CharField(max_length=MAX_MODEL_CHARS, required=False, label="Model")
    metadata = JSONObjectField(required=False, help_text='A JSON object, e.g. {"seed": 7, "steps": 30}.')



# Quality checks ---------------------------------------------------------------------------------------


class CheckForm(forms.Form):
    """A new gold pair or attention check (:func:`annotator.services.check_create` checks it again)."""

    kind = forms.ChoiceField(choices=[("gold", "Gold pair (a known answer)"),
                                      ("attention", "Attention check (an instruction)")],
                             help_text="A gold pair looks like any task; an attention check shows its instruction.")
    left_item = forms.TypedChoiceField(coerce=int, label="Left image", choices=())
    right_item = forms.TypedChoiceField(coerce=int, label="Right image", choices=())
    answer = forms.ChoiceField(choices=[("left", "Left"), ("right", "Right"), ("tie", "About the same (tie)")],
                               label="Correct answer",
                               help_text="Gold pairs are shown with the sides drawn at random: the answer follows "
                                         "the image. Attention checks are shown as set here.")
    instruction = forms.CharField(
        max_length=MAX_INSTRUCTION_CHARS, required=False, widget=forms.TextInput(attrs={"size": 60}),
        help_text="Attention checks only: shown above the images, e.g. “Attention check: choose the image on the "
                  "right.”")

    def __init__(self, *args, items=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "—"), *((item.pk, f"#{item.pk} {item.original_name}") for item in items)]
        self.fields["left_item"].choices = choices
        self.fields["right_item"].choices = choices
