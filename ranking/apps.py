from django.apps import AppConfig


class RankingConfig(AppConfig):
    name = "ranking"
    verbose_name = "Ranking"

    def ready(self) -> None:
        # Importing the services registers their job kinds with ranking.jobs (the sweep needs them all).
        from ranking.services import (  # noqa: F401
            agreement_reports,
            calibration_reports,
            fit_runs,
            metric_runs,
            releases,
            rounds,
        )
