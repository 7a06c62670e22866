from django import forms

from ranking.models import FitModel


class FitRequestForm(forms.Form):
    model = forms.ChoiceField(choices=FitModel.choices, initial=FitModel.BT)
    alpha = forms.FloatField(min_value=0, initial=0.01, help_text="Prior precision on strengths (0 = pure maximum likelihood).")
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
