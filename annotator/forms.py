"""Browser forms (researcher and rater pages)."""

import json

from django import forms

from annotator.models import DEMOGRAPHIC_FIELDS, Demographics


class ProjectForm(forms.Form):
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


class UploadForm(forms.Form):
    files = forms.FileField(
        widget=forms.ClearableFileInput(attrs={"allow_multiple_selected": True, "accept": ".png,.jpg,.jpeg,.webp,.gif,.zip"}),
        help_text="Images and/or ZIP archives (a ZIP may contain manifest.csv or manifest.jsonl).",
    )
    manifest = forms.FileField(required=False, help_text="CSV or JSONL with columns file, prompt, model, metadata.")


class InstructionForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 14}), help_text="Markdown. Saving makes a new version.")


class TaskGenerateForm(forms.Form):
    strategy = forms.ChoiceField(choices=[
        ("within_prompt", "All pairs within each prompt"),
        ("random", "Random pairs (budget)"),
        ("pairs", "Uploaded pair list"),
    ])
    budget = forms.IntegerField(min_value=1, required=False)
    same_prompt = forms.BooleanField(required=False, label="Random pairs only within a prompt")
    pair_list = forms.FileField(required=False, help_text="CSV with two columns: item A, item B (file name, sha256 or id).")
    overlap = forms.IntegerField(min_value=1, max_value=100, required=False, help_text="Judgments wanted per pair.")


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


class _JSONListField(forms.CharField):
    """A JSON textarea that must hold a list."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)

    def to_python(self, value):
        value = super().to_python(value)
        try:
            parsed = json.loads(value or "[]")
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
        if not isinstance(parsed, list):
            raise forms.ValidationError("Must be a JSON list.")
        return parsed


class FeedbackSettingsForm(forms.Form):
    likert_dimensions = _JSONListField(
        help_text='Rich feedback scores (1–5): [{"name", "label", "low", "high", "key"}]. "key" is the '
                  "letter that focuses the score on the rater page.")
    checklist = _JSONListField(
        required=False,
        help_text='Checklist questions: [{"id", "dimension", "question", "required"}], answered yes/no.')


class SingleTaskGenerateForm(forms.Form):
    kind = forms.ChoiceField(choices=[("rich", "Rich feedback: points, misaligned words, scores"),
                                      ("checklist", "Checklist: yes/no questions")])
    overlap = forms.IntegerField(min_value=1, max_value=100, required=False,
                                 help_text="Raters per image (RichHF-18K used 3).")
