from django import forms

from ranking.models import DEFAULT_ALPHA, FitModel, MetricDirection


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
