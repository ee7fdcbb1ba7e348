# ov-exporter container image.
#
#   $ make image         (podman; tags localhost/ov-exporter:<version>, see README "Container image")
#   $ podman run --rm -p 9871:9871 localhost/ov-exporter:0.1.0 serve --demo --listen 0.0.0.0:9871
#
# Production base: Red Hat UBI 9 with Python 3.11, pinned by build tag and digest. This
# reference (build 9.7-1767889564, January 2026) is the one the Dockerfile of GitHub's
# app-sre/qontract-development-cli pins; no registry is reachable where this file was
# written, so it was not pulled or built here.
# The tests build from BASE_IMAGE=localhost/ov-python-base (Debian bookworm's python3.11
# made by debootstrap: tests/image.py).
ARG BASE_IMAGE=registry.access.redhat.com/ubi9/python-311:9.7-1767889564@sha256:99438cd522c6958f0101ee7a35cb7cfeb048e13a20bbe40dd8807ab555961da7

# Stage 1: a virtual environment in /opt/ov-exporter holding the locked dependencies
# (exact versions and hashes from exporter/requirements.lock, which `make lock` keeps
# current) and the project. pip, setuptools and wheel only build it: they are removed
# here, and only the environment is copied into stage 2.
FROM ${BASE_IMAGE} AS build
# UBI's images run as 1001, which cannot write /opt. Root only in this stage, which is
# never shipped: the image's USER is set in stage 2.
# hadolint ignore=DL3002
USER 0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY exporter/requirements.lock exporter/requirements.lock
RUN python3 -m venv /opt/ov-exporter \
    && /opt/ov-exporter/bin/pip install --no-cache-dir --require-hashes --no-deps -r exporter/requirements.lock
COPY pyproject.toml README.md ./
COPY exporter/ov_exporter exporter/ov_exporter
# The alert runbooks the exporter serves at /runbooks/<AlertName>.md.
COPY alerts/runbooks ./alerts/runbooks
# setuptools and wheel come from the lock (the build-system requirements), hence no build isolation.
RUN /opt/ov-exporter/bin/pip install --no-cache-dir --no-deps --no-build-isolation . \
    && /opt/ov-exporter/bin/pip uninstall --yes setuptools wheel pip \
    && /opt/ov-exporter/bin/ov-exporter --version

# Stage 2: the base interpreter plus that environment, nothing else.
FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
# The repository URL; `make image` passes git's origin remote when there is one.
ARG SOURCE=""
LABEL org.opencontainers.image.title="ov-exporter" \
      org.opencontainers.image.description="Prometheus exporter that turns OpenShift Virtualization / KubeVirt anti-patterns into metrics and findings" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV PATH=/opt/ov-exporter/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Owned by root and world-readable: any UID (OpenShift's restricted-v2 SCC picks one, group 0)
# runs it, and it writes nothing, so a read-only root filesystem works.
COPY --from=build /opt/ov-exporter /opt/ov-exporter
USER 1001:0
EXPOSE 9871
ENTRYPOINT ["ov-exporter"]
CMD ["serve", "--listen", "0.0.0.0:9871"]
