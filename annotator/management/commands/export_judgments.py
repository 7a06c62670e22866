from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotator.exports import FORMATS, judgments_export
from annotator.models import Project


class Command(BaseCommand):
    help = "Export a project's judgments as a Parquet or CSV file (streamed; bounded memory)."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The project's slug.")
        parser.add_argument("--format", dest="fmt", choices=FORMATS, default="parquet")
        parser.add_argument("--out", required=True, type=Path, help="File to write (replaced if it exists).")
        parser.add_argument("--since-id", type=int, default=None,
                            help="Only judgments with a larger id (the last_id of a previous export).")

    def handle(self, *args, slug, fmt, out, since_id, **options):
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"No project '{slug}'.")
        partial = out.with_name(out.name + ".partial")
        with partial.open("wb") as f:
            report = judgments_export(project=project, fmt=fmt, out=f, since_id=since_id)
        partial.replace(out)
        self.stdout.write(self.style.SUCCESS(
            f"Wrote {report.n_rows} judgments to {out} (last id: {report.last_id})."))
