# The app in a slim, non-root image, installed with the versions pinned in constraints.txt.
#   docker build -t breeze-balance .
#   docker run --env-file .env -p 3000:3000 breeze-balance                 # web (setup page until configured)
#   docker run --env-file .env breeze-balance python -m bot worker          # the alert checks
#   docker run --env-file .env breeze-balance python -m bot migrate         # before each release
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=3000

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY bot ./bot
RUN pip install --constraint constraints.txt . \
    && useradd --create-home --uid 10001 breeze \
    && chown breeze /app

USER breeze
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]
CMD ["python", "-m", "bot", "serve"]
