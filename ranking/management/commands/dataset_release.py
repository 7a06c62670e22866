from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotator.errors import DomainError
from annotator.models import Project
from ranking.services import releases


class Command(BaseCommand):
    help = ("Write a dataset release of a project into a new folder: Parquet tables loadable with the Hugging Face "
            "datasets library, RichHF-18K-style records, optionally the images, and a dataset card.")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--out", required=True, help="A folder that does not exist yet.")
        parser.add_argument("--images", action="store_true", help="Copy the images into the release.")
        parser.add_argument("--k", type=int, default=releases.DEFAULT_K,
                            help="Suppress demographic answers given by fewer raters (default 5).")
        parser.add_argument("--no-free-text", action="store_true", help="Leave out country and languages.")
        parser.add_argument("--rater-offsets", action="store_true",
                            help="Add the newest hierarchical fit's per-rater offsets (table rater_offsets).")
        parser.add_argument("--licence", default="", help="The licence identifier for the card.")

    def handle(self, *args, slug, out, images, k, no_free_text, licence, rater_offsets, **options):
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"No project {slug!r}.")
        root = Path(out)
        if root.exists():
            raise CommandError(f"{root} exists already: give a new folder.")
        release = releases.release_make_now(project=project, include_images=images, k=k,
                                            exclude_free_text=no_free_text, licence=licence,
                                            include_rater_offsets=rater_offsets)
        if release.status != "succeeded":
            raise CommandError(f"Release #{release.pk} failed: {release.error}")
        try:
            import shutil

            shutil.copytree(releases.release_folder(release), root)
        except (OSError, DomainError) as exc:
            raise CommandError(str(exc)) from exc
        for name, table in release.manifest["tables"].items():
            self.stdout.write(f"  {name:12s} {table['rows']:>10,} rows  {table['bytes']:>12,} bytes")
        self.stdout.write(f"Release #{release.pk} written to {root} (zip: {release.size_bytes:,} bytes).")
