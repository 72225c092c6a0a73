#!/usr/bin/env bash
# Install the Debian packages qthumb needs, only when missing.
# Usage: system-packages.sh CMD:PKG ... | pymod:MODULE:PKG ...
#   CMD:PKG           install PKG when the command CMD is not found
#   pymod:MODULE:PKG  install PKG when $PYTHON (default python3.11) cannot import MODULE
set -euo pipefail
python=${PYTHON:-python3.11}
missing=()
for spec in "$@"; do
  case "$spec" in
    pymod:*)
      rest=${spec#pymod:}; module=${rest%%:*}; pkg=${rest#*:}
      "$python" -c "import $module" >/dev/null 2>&1 || missing+=("$pkg")
      ;;
    *)
      cmd=${spec%%:*}; pkg=${spec#*:}
      command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
      ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing from apt: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
