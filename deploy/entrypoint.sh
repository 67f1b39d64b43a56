#!/bin/sh
# The image's one entry point: the first argument names the process (README, "Processes").
#   web         uvicorn, WEB_CONCURRENCY processes on HOST:PORT (no worker beside it)
#   worker      the main django-q2 cluster (runs the reaper and retention schedules too)
#   gpu-worker  the GPU cluster for VIDEOGEN_DIFFUSERS_MODELS (image built with EXTRAS=gpu)
#   migrate     apply migrations once per release, before the others start
#   manage ...  any manage.py command (create_api_key, check --deploy, purge_media, ...)
# Anything else is run as given.
set -eu
cd /app
case "${1:-web}" in
  web) exec python manage.py serve --no-worker ;;
  worker) exec python manage.py qcluster ;;
  gpu-worker) Q_CLUSTER_NAME=gpu exec python manage.py qcluster ;;
  migrate) exec python manage.py migrate --noinput ;;
  manage) shift; exec python manage.py "$@" ;;
  *) exec "$@" ;;
esac
