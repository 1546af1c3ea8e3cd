# lowbit: the user's entry points. `make demo` and `make test` each work from a clean clone
# on a fresh Debian 12 machine: they install what the build needs, build, and run.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_MPI  ?= build-mpi
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
DEB_PKGS   := cmake gcc make pkg-config libopenblas-dev liblapacke-dev libcjson-dev \
              libpcre2-dev libcmocka-dev python3-numpy python3-pip python3-setuptools python3-wheel \
              help2man openmpi-bin libopenmpi-dev

.PHONY: all deps build build-asan mpi demo test test-fast install fuzz clean

all: build

deps:
	@bash tools/deps.sh $(DEB_PKGS)

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DLB_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS)

# The same binary built with MPI (Open MPI): `mpirun -np N build-mpi/lowbit eval|calibrate|quantize ...`
mpi: deps
	@cmake -S . -B $(BUILD_MPI) -DCMAKE_BUILD_TYPE=Release -DLOWBIT_MPI=ON >/dev/null
	@cmake --build $(BUILD_MPI) -j $(JOBS) --target lowbit

demo: build
	@bash tools/demo.sh $(BUILD)/lowbit

# The CLI, liblowbit.a and liblowbit.so.0, the headers, lowbit.pc and the CMake package
PREFIX ?= /usr/local
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

# The suite runs twice: a normal optimized build, then under AddressSanitizer + UBSan. The MPI
# build is made first: the release suite's cli.mpi runs it under mpirun.
test: build build-asan mpi
	@echo "== tests (release build) =="
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer) =="
	@cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

test-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Fuzzing: every libFuzzer target (tests/fuzz/fuzz_*.c) for FUZZ_SECONDS each, under ASan +
# UBSan, from the committed corpora (tools/fuzz.sh; clang only here, not for `make test`).
FUZZ_SECONDS ?= 60
FUZZ_PKGS    := clang libclang-rt-dev libomp-dev
fuzz:
	@bash tools/deps.sh $(DEB_PKGS) $(FUZZ_PKGS)
	@bash tools/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_MPI)
