#!/usr/bin/env bash
# Regenerate constraints.txt from the current .venv. The pins apply to the Python CI uses
# (3.11+); on an older Python pip falls back to the lower bounds in setup.cfg.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# Pinned versions for reproducible installs; regenerate with scripts/freeze-constraints.sh"
  .venv/bin/python -m pip freeze --exclude-editable | grep -v -E '^(gisgrid|-e )' \
    | sed 's/$/ ; python_version >= "3.11"/'
} > constraints.txt
