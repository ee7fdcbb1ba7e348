# ov-exporter container image.
#
#   $ podman build -t ov-exporter:latest .
#   $ podman run --rm -p 9871:9871 ov-exporter:latest serve --demo --listen 0.0.0.0:9871
#
# Stage 1 builds wheels of the project and of its dependencies; stage 2 installs
# them into a clean interpreter and drops to a numeric non-root user. The image
# runs under any UID with group 0 (OpenShift's restricted-v2 SCC) and writes
# nothing, so it also runs with a read-only root filesystem.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter/ov_exporter ./exporter/ov_exporter
# The alert runbooks the exporter serves at /runbooks/<AlertName>.md
# (exporter/ov_exporter/alert_runbooks links to them).
COPY alerts/runbooks ./alerts/runbooks
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels ov-exporter \
    && rm -rf /wheels \
    && ov-exporter --version
USER 1001:0
WORKDIR /tmp
EXPOSE 9871
ENTRYPOINT ["ov-exporter"]
CMD ["serve", "--listen", "0.0.0.0:9871"]
