FROM python:3.11-slim

WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install --no-cache-dir '.[postgres]' && useradd --system --uid 10001 monitor
COPY feeds.yaml ./feeds.yaml
COPY rules ./rules
USER monitor
CMD ["monitor", "run"]
