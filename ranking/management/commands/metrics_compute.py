from django.core.management.base import BaseCommand, CommandError

from annotator.errors import DomainError
from annotator.models import Project
from ranking import selectors
from ranking.services import metric_runs


class Command(BaseCommand):
    help = ("Compute metrics with the metric plugins for every image of a project: queued for the Celery "
            "workers, or in this process with --sync. --list shows every plugin and what it needs.")

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?", help="The project's slug.")
        parser.add_argument("--metric", action="append", default=[], dest="metrics",
                            help="A plugin name (repeat for several).")
        parser.add_argument("--sync", action="store_true",
                            help="Compute in this process (same lifecycle as a worker) instead of queueing.")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--reference-set", default=None,
                            help="For FID/KID/CMMD: the source model whose images are the reference set.")
        parser.add_argument("--list", action="store_true", help="List the plugins and whether each can run.")

    def handle(self, *args, slug, metrics, sync, batch_size, list, reference_set, **options):
        if list:
            for s in selectors.metric_plugins():
                state = "available" if s.available else f"unavailable: {s.reason}"
                self.stdout.write(f"{s.name:24} v{s.version:3} {s.kind:5} {state}")
                for path in s.missing:
                    self.stdout.write(f"{'':24} missing {path}")
            return
        if not slug:
            raise CommandError("Give the project's slug (or --list).")
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"No project '{slug}'.")
        if not metrics:
            raise CommandError("Name at least one metric with --metric NAME (see --list).")
        ask = metric_runs.metric_run_compute_now if sync else metric_runs.metric_run_request
        try:
            run = ask(project=project, metrics=metrics, batch_size=batch_size, reference_set=reference_set)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if not sync:
            self.stdout.write(self.style.SUCCESS(f"Computation #{run.pk} queued for the workers."))
        elif run.status == "succeeded":
            scores = run.counts.get("scores", {})
            done = ", ".join(f"{name}: {scores[name]}" for name in run.params["plugins"] if name in scores)
            self.stdout.write(self.style.SUCCESS(f"Computation #{run.pk} done in {run.counts.get('seconds')} s ({done})."))
        else:
            raise CommandError(f"Computation #{run.pk} {run.status}: {run.error}")
