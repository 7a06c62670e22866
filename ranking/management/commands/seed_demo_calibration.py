from django.core.management.base import BaseCommand
from django.urls import reverse

from ranking.services import demo_calibration


class Command(BaseCommand):
    help = ("Create the metric-calibration demo once: generated images judged by simulated raters, the offline "
            "metrics, a Bradley–Terry fit and a calibration report (safe to run again).")

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url, **options):
        done = demo_calibration.demo_calibration_seed()
        project = done["project"]
        if "judgments" in done:
            self.stdout.write(f"  Simulated raters: {done['judgments']} judgments in {project.slug}.")
        report = done.get("report")
        if report is not None and report.status != "succeeded":
            self.stdout.write(f"  Calibration:      report #{report.pk} {report.status}: {report.error}")
        url = base_url.rstrip("/") + reverse("ranking:calibration", args=[project.slug])
        self.stdout.write(f"  Calibration page: {url}")
        if "rounds" in done:
            self.stdout.write(f"  Simulated raters: {done['rounds']} calibration rounds ranked in {project.slug}.")
        url = base_url.rstrip("/") + reverse("ranking:rounds", args=[project.slug])
        self.stdout.write(f"  Rounds (staff):   {url}")
