from django.core.management.base import BaseCommand
from django.urls import reverse

from annotator.demo import DEMO_SLUG, RICH_SLUG
from annotator.models import Project
from ranking.services import metric_runs

#: The metrics that need no weights: computed for the demo projects on any machine.
OFFLINE_METRICS = ["colourfulness", "sharpness_laplacian_var", "resolution_mp", "aspect_ratio", "brisque"]


class Command(BaseCommand):
    help = ("Compute the offline metrics (no weights needed) for the demo projects, once: a project that "
            "already has them is left alone.")

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url, **options):
        for slug in (DEMO_SLUG, RICH_SLUG):
            project = Project.objects.filter(slug=slug).first()
            if project is None:
                continue
            run = metric_runs.metric_run_seed(project=project, metrics=OFFLINE_METRICS)
            if run is None:
                self.stdout.write(f"  Metric scores:    {slug} already has them.")
            else:
                self.stdout.write(f"  Metric scores:    {slug}: run #{run.pk} {run.status} "
                                  f"({run.counts.get('seconds', '?')} s){': ' + run.error if run.error else ''}")
        demo = Project.objects.filter(slug=DEMO_SLUG).first()
        if demo is not None:
            self.stdout.write(f"  Metrics page:     {base_url.rstrip('/')}{reverse('ranking:metrics', args=[demo.slug])}")
