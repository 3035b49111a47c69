# A container for the planner: Debian's Chromium for PNG/SVG export, the package with its
# declared dependencies, and Streamlit listening on all interfaces inside the container.
# Not built in this project's CI (no container engine there); see README "Hosting".
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY ui ./ui
RUN pip install --no-cache-dir .
COPY . .

# Run as an unprivileged user; Chromium runs without its sandbox as root only.
RUN useradd --create-home planner
USER planner

EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
CMD ["streamlit", "run", "app.py", "--server.address", "0.0.0.0", "--server.port", "8501", "--browser.gatherUsageStats", "false"]
