# The two commands a new user needs: `make demo` and `make test`. Everything else is here too.
.PHONY: deps build debug test unit demo bench fuzz format clean package

FUZZ_SECONDS ?= 60

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release

debug: deps
	@cmake --preset debug >/dev/null
	@cmake --build --preset debug

# Release build + ASan/UBSan build, and every test (unit, fuzz-corpus replay, integration) on both.
test: build debug
	ctest --preset release
	ctest --preset debug

# Only the ficus binary: the demo needs no test, fuzzer replay or benchmark.
demo: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release --target ficus
	@bash scripts/demo.sh

# The Debian package (build/release/ficus_VERSION_ARCH.deb) from the release build.
package: build
	@cd build/release && cpack -G DEB

bench: build
	@python3 bench/proxy/run.py
	@python3 bench/load/run.py
	@python3 bench/balancers/run.py
	@python3 bench/cache/run.py
	@python3 bench/compress/run.py
	@python3 bench/protect/run.py
	@python3 bench/pg/run.py
	@python3 bench/offload/run.py

fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz
	@bash scripts/fuzz.sh $(FUZZ_SECONDS)

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
