# Preloop server image. Build: docker build -t preloop .
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PRELOOP_SERVER_HOST=0.0.0.0 PRELOOP_DATA_DIR=/var/lib/preloop
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY server ./server
COPY bots ./bots
COPY tui ./tui
COPY policies ./policies
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/preloop preloop \
    && mkdir -p /var/lib/preloop && chown preloop /var/lib/preloop
USER preloop
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
CMD ["preloop", "serve"]
