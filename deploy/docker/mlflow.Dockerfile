# syntax=docker/dockerfile:1
# The MLflow tracking and registry server: metadata in Postgres, artifacts in object storage.
#   docker build -f deploy/docker/mlflow.Dockerfile -t fraud-platform/mlflow:TAG .
# MLFLOW_BACKEND_STORE_URI (postgresql://…) and MLFLOW_ARTIFACTS_DESTINATION (s3://…) come from the
# environment (a Kubernetes Secret), never from the image.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 MLFLOW_DISABLE_TELEMETRY=true
COPY requirements.lock /tmp/requirements.lock
# The same MLflow and psycopg2 as the platform's lock, and boto3 for S3 artifacts.
RUN grep -E '^(mlflow|mlflow-skinny|mlflow-tracing|psycopg2-binary)==' /tmp/requirements.lock \
        > /tmp/mlflow.txt \
    && pip install -r /tmp/mlflow.txt "boto3>=1.35,<2" \
    && useradd --create-home --uid 10001 mlflow
USER mlflow
EXPOSE 5000
CMD ["sh", "-c", "exec mlflow server --host 0.0.0.0 --port 5000 \
     --backend-store-uri \"$MLFLOW_BACKEND_STORE_URI\" \
     --artifacts-destination \"$MLFLOW_ARTIFACTS_DESTINATION\" --serve-artifacts"]
