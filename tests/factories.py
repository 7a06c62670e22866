"""factory_boy factories for PrefLab's models, with real (tiny, generated) images."""

import hashlib
import io
import itertools

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image

from annotator import services
from annotator.models import Item, Project, Rater

_colour = itertools.count()


def png_bytes(width: int = 32, height: int = 24, seed: int | None = None) -> bytes:
    n = next(_colour) if seed is None else seed
    img = Image.new("RGB", (width, height), ((n * 37) % 256, (n * 91) % 256, (n * 53) % 256))
    img.putpixel((0, 0), (n % 256, (n // 256) % 256, (n // 65536) % 256))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-only")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    owner = factory.SubFactory(UserFactory)
    overlap = 3

    @factory.post_generation
    def with_owner_membership(obj, create, extracted, **kwargs):
        if create:
            services.membership_set(project=obj, user=obj.owner, role="researcher")


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    project = factory.SubFactory(ProjectFactory)
    original_name = factory.Sequence(lambda n: f"img{n}.png")
    prompt = "a red apple"
    width = 32
    height = 24
    image_format = "PNG"

    @factory.lazy_attribute
    def _data(self):
        return png_bytes(self.width, self.height)

    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o._data).hexdigest())
    image = factory.LazyAttribute(lambda o: ContentFile(o._data, name=f"{o.sha256}.png"))

    @classmethod
    def _adjust_kwargs(cls, **kwargs):
        kwargs.pop("_data", None)
        return kwargs


class RaterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rater

    project = factory.SubFactory(ProjectFactory)
