#!/usr/bin/env bash
# The man page, lowbit.1, from the CLI's own --help (help2man): the command list, then each
# command's usage in a COMMANDS section. Usage: tools/man.sh LOWBIT OUT.1
set -euo pipefail
LOWBIT=$1
OUT=$2
INC=$(mktemp)
trap 'rm -f "$INC"' EXIT
{
    echo "[COMMANDS]"
    for c in $("$LOWBIT" --help | awk '/^  [a-z]+  / { print $1 }'); do
        echo ".SS $c"
        echo ".nf"
        "$LOWBIT" "$c" --help | tail -n +3 | sed 's/\\/\\e/g; s/^\./\\\&./'
        echo ".fi"
    done
    echo "[SEE ALSO]"
    echo "The README and bench/README.md in lowbit's source tree."
} > "$INC"
help2man --no-info --name="quantize LLMs on a CPU, write GGUF, measure what was lost" \
    --include="$INC" --output="$OUT" "$LOWBIT"
