#!/bin/sh
# Stands in for a Python interpreter (ANIMIND_PYTHON) in the fault tests: it passes the
# dependency probe (`-c …`) and runs fake-worker.ts in place of `-m animind_trainer.worker`.
if [ "$1" = "-c" ]; then exit 0; fi
exec node --import tsx "$(dirname "$0")/fake-worker.ts"
