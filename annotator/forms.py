"""Browser forms (researcher and rater pages)."""

from django import forms

from annotator.models import Demographics


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=64, required=False, help_text="Leave blank to derive it from the name.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    overlap = forms.IntegerField(min_value=1, max_value=100, initial=3, help_text="Judgments wanted per pair.")
    tasks_per_rater = forms.IntegerField(min_value=0, initial=0, help_text="0: as many as are left.")
    completion_redirect_url = forms.URLField(required=False, assume_scheme="https", help_text="e.g. the crowd platform's completion URL.")


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


def _choices(model_choices):
    return [("", "—")] + list(model_choices)


class DemographicsForm(forms.Form):
    country = forms.CharField(max_length=64, required=False, help_text='Where you live (or "prefer not to say").')
    languages = forms.CharField(max_length=200, required=False, help_text="Languages you speak fluently.")
    age_band = forms.ChoiceField(choices=_choices(Demographics.AgeBand.choices), required=False, label="Age")
    gender = forms.ChoiceField(choices=_choices(Demographics.Gender.choices), required=False)
    expertise = forms.ChoiceField(choices=_choices(Demographics.Expertise.choices), required=False,
                                  label="Visual expertise")
    colour_vision = forms.ChoiceField(choices=_choices(Demographics.ColourVision.choices), required=False)
    device = forms.ChoiceField(choices=_choices(Demographics.Device.choices), required=False,
                               label="Device you are using")
