# The worker image: orderflow and its pinned dependencies on Python 3.11.
# The base image by exact version and digest: a rebuild gets the same Python and Debian
# packages until this line changes.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY orderflow ./orderflow
RUN pip install --no-cache-dir --prefix=/install -c constraints.txt .

FROM ${PYTHON_IMAGE}
RUN groupadd --gid 10001 orderflow \
    && useradd --uid 10001 --gid 10001 --create-home orderflow \
    && mkdir -p /var/lib/orderflow && chown 10001:10001 /var/lib/orderflow
COPY --from=build /install /usr/local
# Numeric, so that Kubernetes can check runAsNonRoot without reading /etc/passwd (the
# manifests' runAsUser and runAsGroup are the same numbers).
USER 10001:10001
ENV ORDERFLOW_DATA_DIR=/var/lib/orderflow ORDERFLOW_WEB_HOST=0.0.0.0
# Logs reach the container runtime at once; nothing is written next to the code (the root
# filesystem is read-only on Kubernetes).
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 6066
ENTRYPOINT ["orderflow"]
CMD ["worker"]
