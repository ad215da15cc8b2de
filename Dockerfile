# One image for all three services; the command chooses which one runs:
#   docker run beers-shop users serve --host 0.0.0.0 --port 5001
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY tasks.py pyproject.toml ./
COPY servicekit ./servicekit
COPY users ./users
COPY beers ./beers
COPY orders ./orders

# Never root; the instance folder (SQLite by default) is the only place written
# besides /tmp (the metrics files of the workers).
RUN useradd --system --uid 10001 --home-dir /app shop \
    && mkdir -p /app/instance && chown shop /app/instance
USER 10001

EXPOSE 5001 5002 5003
ENTRYPOINT ["python", "-m", "invoke"]
CMD ["users", "serve", "--host", "0.0.0.0", "--port", "5001"]
