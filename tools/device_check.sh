#!/usr/bin/env bash
# The device check (tools/device_check.py): throughput and peak memory per method and
# metric, and CPU-vs-device agreement, as one table. One command on a fresh GPU machine:
#   bash tools/device_check.sh [--device auto|cpu|cuda] [--budget-s S] [--out FILE]
# Uses .venv when present, else installs the project into one (pip, from this repository).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e .
fi
exec .venv/bin/python -W ignore tools/device_check.py "$@"
