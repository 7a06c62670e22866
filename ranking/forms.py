from django import forms

from ranking.models import (
    DEFAULT_ALPHA,
    FitModel,
    GateDirection,
    MetricDirection,
    MetricGate,
    RoundRaters,
    RoundSampling,
)


class FitRequestForm(forms.Form):
    model = forms.ChoiceField(choices=FitModel.choices, initial=FitModel.BT)
    alpha = forms.FloatField(min_value=0, initial=DEFAULT_ALPHA, help_text="Prior precision on strengths (0 = pure maximum likelihood).")
    half_life_days = forms.FloatField(min_value=0.001, required=False,
                                      help_text="Time decay: a judgment this many days old counts half. Blank: no decay.")
    ties = forms.ChoiceField(choices=[("davidson", "Model ties (Davidson)"), ("ignore", "Leave ties out")])
    tau = forms.FloatField(min_value=0.0001, required=False,
                           help_text="Hierarchical only: spread of personal tastes (logits). Blank: estimate by cross-validation.")

    def params(self) -> dict:
        data = self.cleaned_data
        params = {"alpha": data["alpha"], "half_life_days": data.get("half_life_days"), "ties": data["ties"]}
        if data["model"] == FitModel.HBT:
            params["tau"] = data.get("tau")
        return params


class MetricImportForm(forms.Form):
    file = forms.FileField(help_text="CSV or JSONL with columns item (id, sha256 or file name), metric, value "
                                     "and optionally version.")
    create = forms.BooleanField(required=False, label="Create unknown metrics",
                                help_text="Otherwise a metric the project does not know is an error.")
    direction = forms.ChoiceField(choices=MetricDirection.choices, initial=MetricDirection.HIGHER,
                                  help_text="For metrics this import creates.")
    dimension = forms.CharField(max_length=40, required=False,
                                help_text="For metrics this import creates: what they claim to measure, e.g. aesthetics.")


class RoundForm(forms.Form):
    sample_size = forms.IntegerField(min_value=3, max_value=10, initial=10,
                                     help_text="Images to rank (3–10): each rater orders all of them.")
    sampling = forms.ChoiceField(choices=RoundSampling.choices, initial=RoundSampling.UNIFORM)
    gate = forms.ModelChoiceField(queryset=MetricGate.objects.none(), required=False,
                                  help_text="Sampling near a threshold: whose threshold.")
    raters = forms.ChoiceField(choices=RoundRaters.choices, initial=RoundRaters.STAFF)
    panel = forms.ModelMultipleChoiceField(queryset=None, required=False,
                                           help_text="A panel round: the staff members who rank it.")
    n_raters = forms.IntegerField(min_value=1, max_value=100, initial=3, required=False, label="Crowd raters",
                                  help_text="A crowd round: how many raters may take it by its link.")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)

    def __init__(self, *args, project, staff, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["gate"].queryset = MetricGate.objects.filter(project=project, is_active=True).select_related("metric")
        self.fields["panel"].queryset = staff


class GateForm(forms.Form):
    metric = forms.ModelChoiceField(queryset=None)
    threshold = forms.FloatField()
    direction = forms.ChoiceField(choices=[("", "The metric's own direction"), *GateDirection.choices],
                                  required=False)
    dimension = forms.CharField(max_length=40, initial="overall")
    reason = forms.CharField(max_length=2000, required=False, widget=forms.TextInput())

    def __init__(self, *args, metrics, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["metric"].queryset = metrics


class ScheduleForm(forms.Form):
    every_n_images = forms.IntegerField(min_value=1, required=False, label="Every N new images",
                                        help_text="A round each time this many images have been added (blank: off).")
    every_days = forms.IntegerField(min_value=1, max_value=3650, required=False, label="Every D days",
                                    help_text="A round each time this many days have passed (blank: off).")
    sample_size = forms.IntegerField(min_value=3, max_value=10, initial=10)
    sampling = forms.ChoiceField(choices=[c for c in RoundSampling.choices if c[0] != RoundSampling.NEAR_THRESHOLD])
    raters = forms.ChoiceField(choices=[c for c in RoundRaters.choices if c[0] != RoundRaters.PANEL])
    n_raters = forms.IntegerField(min_value=1, max_value=100, initial=3, required=False, label="Crowd raters per round")
    is_active = forms.BooleanField(required=False, initial=True, label="Active")


class ReleaseForm(forms.Form):
    title = forms.CharField(max_length=200, required=False, help_text="The dataset's name on the card (default: the project's).")
    licence = forms.CharField(max_length=100, required=False, initial="cc-by-4.0",
                              help_text="An SPDX-style identifier for the card, e.g. cc-by-4.0.")
    k = forms.IntegerField(min_value=1, max_value=1000, initial=5, label="Smallest demographic cell (k)",
                           help_text="Demographic answers given by fewer raters are released as “(suppressed)”.")
    exclude_free_text = forms.BooleanField(required=False, label="Leave out free-text answers (country, languages)")
    include_images = forms.BooleanField(required=False, label="Include the images")
    include_rater_offsets = forms.BooleanField(
        required=False, label="Include per-rater offsets",
        help_text="The newest hierarchical fit's personal deviations of each rater from the population strengths.")
