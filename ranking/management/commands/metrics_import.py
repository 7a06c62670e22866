from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotator.errors import DomainError
from annotator.imports import Upload
from annotator.models import Project
from ranking.models import MetricDirection
from ranking.services.metric_scores import ScoresRejected, metric_scores_import


class Command(BaseCommand):
    help = ("Import per-image metric scores from a CSV or JSONL file (columns item, metric, value[, version]) "
            "as one run, all or nothing; every problem is listed by line.")

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The project's slug.")
        parser.add_argument("file", type=Path, help="The score file (.csv or .jsonl).")
        parser.add_argument("--create", action="store_true", help="Create metrics the project does not know.")
        parser.add_argument("--direction", choices=MetricDirection.values, default=MetricDirection.HIGHER,
                            help="Direction of the metrics --create makes (default: higher is better).")
        parser.add_argument("--dimension", default="", help="What the metrics --create makes claim to measure.")

    def handle(self, *args, slug, file, create, direction, dimension, **options):
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"No project '{slug}'.")
        if not file.is_file():
            raise CommandError(f"No file {file}.")
        with file.open("rb") as stream:
            try:
                run = metric_scores_import(project=project, upload=Upload(name=file.name, stream=stream,
                                                                          size=file.stat().st_size),
                                           create=create, direction=direction, dimension=dimension)
            except ScoresRejected as exc:
                for line, message in exc.problems:
                    self.stderr.write(f"{file.name}:{line}: {message}" if line else f"{file.name}: {message}")
                raise CommandError(f"Nothing was imported: {exc.total} problem(s).") from None
            except DomainError as exc:
                raise CommandError(exc.message) from None
        per_metric = ", ".join(f"{name}: {n:,}" for name, n in run.counts["metrics"].items())
        self.stdout.write(self.style.SUCCESS(
            f"Imported {run.counts['rows']:,} scores of {run.counts['items']:,} images as run #{run.pk} ({per_metric})."))
