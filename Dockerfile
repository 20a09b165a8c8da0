# agentkit: the webhook receiver and the workers (docs/deployment.md).
#   docker build -t agentkit .
#   docker run -p 8080:8080 -v agentkit-data:/data -e ODYGY_API_KEY -e ODYGY_WEBHOOK_SECRET agentkit
# That is one process on SQLite.
# Several processes share PostgreSQL: docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A user of its own, and the only folder it may write: /data (mount a volume there).
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/agentkit agentkit \
 && mkdir /data \
 && chown agentkit:agentkit /data

# Dependencies first, from pyproject.toml alone, so that editing the code reuses this layer.
WORKDIR /src
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip install -r requirements.txt

# Then the package itself; the source folder is not kept.
COPY agentkit ./agentkit
RUN pip install --no-deps . \
 && cd / && rm -rf /src

# The shipped bots and prompts, read from the working folder (./bots, ./prompts).
WORKDIR /app
COPY bots ./bots
COPY prompts ./prompts

# SQLite by default, in the volume; a deployment of several processes sets PostgreSQL.
ENV AGENTKIT_DATABASE_URL=sqlite:////data/agentkit.db

USER agentkit
EXPOSE 8080
# SIGTERM drains: running jobs get --drain-seconds (20) to finish, the rest are handed back.
STOPSIGNAL SIGTERM
# No curl in slim: Python's urllib. Any answer but 2xx, or none, exits 1.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["agentkit"]
CMD ["run", "--host", "0.0.0.0"]
