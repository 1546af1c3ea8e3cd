# The installable library: `cmake --install` into a fresh prefix gives the CLI, liblowbit.a,
# liblowbit.so.0 (with its SONAME), the headers, a relocatable lowbit.pc and a CMake package;
# examples/quantize_eval.c compiles with `pkg-config --cflags --libs lowbit` against that
# prefix and runs (quantize to Q8_0, perplexity before and after); lb_version() is the
# CLI's version; a CMake project finds the package.
. "$(dirname "$0")/lib.inc"

BUILD=$(dirname "$LOWBIT")
P=$WORK/prefix
cmake --install "$BUILD" --prefix "$P" > "$WORK/log" 2>&1 || { fail "cmake --install: $(tail -3 "$WORK/log")"; finish; }
LIBDIR=$(dirname "$(find "$P" -name liblowbit.a | head -1)")
for f in bin/lowbit include/lowbit/lowbit.h include/lowbit/version.h include/lowbit/range.h; do
    [ -e "$P/$f" ] || fail "not installed: $f"
done
[ -e "$LIBDIR/liblowbit.so.0" ] && [ -e "$LIBDIR/pkgconfig/lowbit.pc" ] && [ -e "$LIBDIR/cmake/lowbit/lowbitConfig.cmake" ] \
    && pass "installed: CLI, headers, liblowbit.a, liblowbit.so.0, lowbit.pc, CMake package" || fail "installed: $(find "$P" | head -30)"
objdump -p "$LIBDIR/liblowbit.so.0" | grep -q "SONAME *liblowbit.so.0" && pass "SONAME liblowbit.so.0" || fail "SONAME"
syms=$(nm -D --defined-only "$LIBDIR/liblowbit.so.0" | awk '{ sub(/@.*/, "", $3); print $3 }')
echo "$syms" | grep -qx "lb_model_load" && echo "$syms" | grep -qx "lb_api_quantize" && ! echo "$syms" | grep -qx "lb_model_alloc" \
    && ! echo "$syms" | grep -q "^lb_hfq_\|^lb_method_" \
    && pass "liblowbit.so.0 exports what include/lowbit declares ($(echo "$syms" | grep -c '^lb_') functions), no internals" \
    || fail "exports: $(echo "$syms" | grep -c .) symbols"

export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
[ "$(pkg-config --modversion lowbit)" = "$("$P/bin/lowbit" --version | awk '{ print $2 }')" ] \
    && pass "pkg-config --modversion: the CLI's version" || fail "modversion $(pkg-config --modversion lowbit 2>&1)"
SAN=""
[ "${LB_SANITIZE:-0}" = 1 ] && SAN="-fsanitize=address,undefined"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror $SAN "$SRC/examples/quantize_eval.c" $(pkg-config --cflags --libs lowbit) \
    -o "$WORK/quantize_eval" 2> "$WORK/cc" || fail "the example does not build: $(head -5 "$WORK/cc")"
head -c 20000 "$TEXT" > "$WORK/text.txt"
LD_LIBRARY_PATH=$LIBDIR "$WORK/quantize_eval" "$MODEL" "$WORK/text.txt" "$WORK/q8.gguf" > "$WORK/out" 2>&1 \
    || fail "the example fails: $(tail -2 "$WORK/out")"
LD_LIBRARY_PATH=$LIBDIR ldd "$WORK/quantize_eval" | grep -q "liblowbit.so.0 => $LIBDIR" && pass "the example links the installed liblowbit.so.0" \
    || fail "ldd: $(ldd "$WORK/quantize_eval" | grep lowbit)"
grep -q "^lowbit [0-9.]* (headers [0-9.]*)" "$WORK/out" && grep -q "^q8_0: [0-9.]* bits per weight; perplexity [0-9.]* -> [0-9.]*" "$WORK/out" \
    && pass "the example runs: $(tail -1 "$WORK/out")" || fail "example output: $(cat "$WORK/out")"

if command -v help2man > /dev/null; then
    grep -q '^\.TH LOWBIT "1"' "$P/share/man/man1/lowbit.1" && grep -q '^\.SS quantize' "$P/share/man/man1/lowbit.1" \
        && pass "man page: share/man/man1/lowbit.1, every command's usage" || fail "man page missing or empty"
else
    echo "# skip: no help2man (make deps installs it): no man page built"
fi
comp() { # WORDS...: what the installed completion offers for the last word
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _lowbit; printf "%s\n" "${COMPREPLY[@]}"' \
        _ "$P/share/bash-completion/completions/lowbit" "$@"
}
comp "$P/bin/lowbit" qu | grep -qx quantize && comp "$P/bin/lowbit" quantize --output-t | grep -qx -- --output-tensor-type \
    && pass "bash completion: commands, and each command's options from its --help" || fail "completion: $(comp "$P/bin/lowbit" qu)"

mkdir -p "$WORK/cm"
cat > "$WORK/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(uses_lowbit C)
find_package(lowbit REQUIRED)
add_executable(quantize_eval quantize_eval.c)
target_link_libraries(quantize_eval PRIVATE lowbit::lowbit)
CM
cp "$SRC/examples/quantize_eval.c" "$WORK/cm/"
if [ -z "$SAN" ]; then
    cmake -S "$WORK/cm" -B "$WORK/cm/b" -DCMAKE_PREFIX_PATH="$P" > "$WORK/cmlog" 2>&1 && cmake --build "$WORK/cm/b" > "$WORK/cmlog" 2>&1 \
        && pass "find_package(lowbit) and lowbit::lowbit" || fail "the CMake package: $(tail -5 "$WORK/cmlog")"
fi
finish
