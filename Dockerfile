# One image for all three services. The entrypoint is the server; the command
# chooses which service it serves:
#   docker run beers-shop:1.0.0 users --host 0.0.0.0 --port 5001 --workers 2
# It serves the database as it finds it: the migrations are their own step,
# run before the server starts (Kubernetes' init container, compose's one-shot):
#   docker run --entrypoint python beers-shop:1.0.0 -m invoke users setup
# The base image is a build argument, so a mirror or a local stand-in can take
# the official image's place:
#   docker build --build-arg PYTHON_IMAGE=registry.example/python:3.11-slim -t beers-shop:1.0.0 .
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies first: their layer is rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY tasks.py launcher.py pyproject.toml ./
COPY servicekit ./servicekit
COPY users ./users
COPY beers ./beers
COPY orders ./orders

# Never root, and the code is root's, read-only to the service; the instance
# folder (SQLite by default) is the only place written besides /tmp (the
# metrics files of the workers).
RUN groupadd --gid 10001 shop \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin shop \
    && mkdir -p /app/instance && chown shop:shop /app/instance
USER 10001

EXPOSE 5001 5002 5003
ENTRYPOINT ["python", "-m", "servicekit.serving"]
CMD ["users", "--host", "0.0.0.0", "--port", "5001", "--workers", "2"]
