# The Python package (python/lowbit, ctypes over liblowbit.so.0): `pip install` works offline
# (into a target directory, from a copy so the checkout stays clean), and its unittest suite
# passes against the installed package and this build's library. Skipped under the
# sanitizers (the library would need their runtime preloaded into Python).
. "$(dirname "$0")/lib.inc"

[ "${LB_SANITIZE:-0}" = 1 ] && { echo "# skip: the sanitized liblowbit.so needs ASan's runtime in python3"; exit 77; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
"$PY" -c "import numpy" 2> /dev/null || { echo "# skip: no python3 with numpy (make deps installs python3-numpy)"; exit 77; }
BUILD=$(dirname "$LOWBIT")
[ -e "$BUILD/liblowbit.so.0" ] || { fail "no $BUILD/liblowbit.so.0"; finish; }

cp -r "$SRC/python" "$WORK/py"
"$PY" -m pip install --quiet --no-index --no-build-isolation --target "$WORK/site" "$WORK/py" > "$WORK/pip" 2>&1 \
    && [ -e "$WORK/site/lowbit/__init__.py" ] && pass "pip install ./python, offline" || fail "pip install: $(tail -3 "$WORK/pip")"
v=$(cd "$WORK" && PYTHONPATH=$WORK/site LOWBIT_LIBRARY=$BUILD/liblowbit.so.0 "$PY" -c "import lowbit; print(lowbit.__version__)")
[ "$v" = "$("$LOWBIT" --version | awk '{ print $2 }')" ] && pass "lowbit.__version__ $v: the library's" || fail "version '$v'"
(cd "$WORK" && PYTHONPATH=$WORK/site LOWBIT_LIBRARY=$BUILD/liblowbit.so.0 LOWBIT_CLI=$LOWBIT \
    "$PY" -m unittest discover -s "$SRC/python/tests" -v) > "$WORK/ut" 2>&1
tail -4 "$WORK/ut"
grep -q "^OK" "$WORK/ut" && pass "python unittest: $(grep '^Ran' "$WORK/ut")" || fail "python unittest: $(grep -E 'FAIL|ERROR' "$WORK/ut" | head -5)"
finish
