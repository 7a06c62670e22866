from django.core.management.base import BaseCommand

from annotator.demo import demo_seed


class Command(BaseCommand):
    help = "Create the demo project (generated images, instructions, pairwise tasks) and its researcher."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url, **options):
        project, password = demo_seed()
        base = base_url.rstrip("/")
        self.stdout.write(self.style.SUCCESS("PrefLab demo is ready."))
        self.stdout.write(f"  Researcher pages: {base}/projects/{project.slug}/")
        self.stdout.write(f"  Log in as:        researcher / {password}   (a new password on every run)")
        self.stdout.write(f"  Rater join link:  {base}/join/{project.slug}/{project.join_token}/")
        self.stdout.write(f"  Crowd-style link: {base}/join/{project.slug}/{project.join_token}/"
                          "?PROLIFIC_PID=demo-participant&STUDY_ID=demo&SESSION_ID=s1")
        from annotator.demo import RICH_SLUG
        from annotator.models import Project

        rich = Project.objects.filter(slug=RICH_SLUG).first()
        if rich is not None:
            self.stdout.write(f"  Rich feedback:    {base}/join/{rich.slug}/{rich.join_token}/   "
                              f"(researcher pages: {base}/projects/{rich.slug}/feedback/)")
        self.stdout.write(f"  API docs:         {base}/api/docs/")
