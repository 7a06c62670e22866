from django.core.management.base import BaseCommand
from django.urls import reverse

from annotator.demo import RICH_SLUG, demo_seed
from annotator.models import Project


class Command(BaseCommand):
    help = "Create the demo project (generated images, instructions, pairwise tasks) and its researcher."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url, **options):
        project, password = demo_seed()
        base = base_url.rstrip("/")
        join_url = base + reverse("join", args=[project.slug, project.join_token])
        self.stdout.write(self.style.SUCCESS("PrefLab demo is ready."))
        self.stdout.write(f"  Researcher pages: {base}{reverse('annotator:project_detail', args=[project.slug])}")
        self.stdout.write(f"  Log in as:        researcher / {password}   (a new password on every run)")
        self.stdout.write(f"  Rater join link:  {join_url}")
        self.stdout.write(f"  Crowd-style link: {join_url}?PROLIFIC_PID=demo-participant&STUDY_ID=demo&SESSION_ID=s1")
        rich = Project.objects.filter(slug=RICH_SLUG).first()
        if rich is not None:
            self.stdout.write(f"  Rich feedback:    {base}{reverse('join', args=[rich.slug, rich.join_token])}   "
                              f"(researcher pages: {base}{reverse('annotator:feedback', args=[rich.slug])})")
        self.stdout.write(f"  API docs:         {base}{reverse('api_docs')}")
