# One image for web (gunicorn), Celery worker and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY config config
COPY annotator annotator
COPY ranking ranking
# torch is pinned (2.13.0). To keep the image small, pass a CPU-only wheel index:
#   docker compose build --build-arg PIP_EXTRA_INDEX_URL=<your CPU wheel index>
ARG PIP_EXTRA_INDEX_URL=""
RUN pip install .
COPY . .
RUN SECRET_KEY=build-only DEBUG=0 python manage.py collectstatic --no-input -v0
RUN useradd --create-home preflab && mkdir -p /data/media && chown -R preflab /data /app
USER preflab
EXPOSE 8000
# gunicorn reads its number of (sync) workers from WEB_CONCURRENCY; 4 is the shape bench/bench_http.py measures
# on 2 cores (about two per core; raise it with the cores)
ENV WEB_CONCURRENCY=4
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
