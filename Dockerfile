# The worker image: orderflow and its pinned dependencies on Python 3.11.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY orderflow ./orderflow
RUN pip install --no-cache-dir --prefix=/install -c constraints.txt .

FROM python:3.11-slim
RUN useradd --uid 10001 --create-home orderflow && mkdir -p /var/lib/orderflow \
    && chown orderflow /var/lib/orderflow
COPY --from=build /install /usr/local
USER orderflow
ENV ORDERFLOW_DATA_DIR=/var/lib/orderflow ORDERFLOW_WEB_HOST=0.0.0.0
# Logs reach the container runtime at once; nothing is written next to the code (the root
# filesystem is read-only on Kubernetes).
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 6066
ENTRYPOINT ["orderflow"]
CMD ["worker"]
