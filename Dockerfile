# One image for every novaflow process (API, control-plane worker, compute worker); the
# command chooses which. libvirt-dev is needed to build libvirt-python.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc pkg-config libvirt-dev libvirt-clients \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY novaflow novaflow
COPY api api
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY codec codec
RUN pip install --no-cache-dir .
EXPOSE 8774
CMD ["uvicorn", "api.app:app", "--host", "0.0.0.0", "--port", "8774"]
