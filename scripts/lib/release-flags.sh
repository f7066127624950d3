# Code-generation flags of the binaries we ship, by Rust target triple: one
# place for scripts/release-dry-run.sh and the benchmarks (tests/it/release.rs
# checks that .goreleaser.yml sets the same for its Linux build).
#
# Linux: a non-PIE executable (`-C relocation-model=static`). A PIE of this
# size carries ~14,000 relative relocations that the dynamic loader applies
# on every start, copying ~60 pages of .data.rel.ro; Terraform starts the
# provider several times per command. Non-PIE saves ~0.2 ms a start
# (scripts/bench/README.md, dated runs). It gives up ASLR of the executable
# image only: shared libraries, stack, heap and mmap stay randomised. Go
# builds non-PIE executables by default on linux/amd64, so Terraform and
# HashiCorp's providers are started the same way.
#
# The flag must not reach build scripts and proc-macros (they are linked as
# shared objects): every build that uses it passes --target, so cargo keeps
# RUSTFLAGS to the target's artifacts.
#
# Linux also drops the DWARF unwind tables at link time
# (scripts/lib/no-unwind-tables.ld says why that is safe with panic =
# "abort"): 6.33 -> 5.50 MB for the x86_64 binary, no change in start-up
# (2026-12-06). The path is relative to the package root, where cargo runs
# rustc and rustc runs the linker.

# release_rustflags TRIPLE: the RUSTFLAGS for TRIPLE (glibc suffix allowed).
release_rustflags() {
  case $1 in
    *-linux-gnu*) printf '%s\n' "-C relocation-model=static -C link-arg=-Wl,-T,scripts/lib/no-unwind-tables.ld" ;;
    *) printf '\n' ;;
  esac
}

# host_triple: the triple rustc builds for by default.
host_triple() {
  rustc -vV | sed -n 's/^host: //p'
}

# release_build ARGS...: `cargo build --release --locked ARGS` for the host,
# as we ship it (flags above, --target the host triple). Prints the
# directory that holds the binaries (…/<triple>/release).
release_build() {
  local host target_dir
  host=$(host_triple)
  RUSTFLAGS=$(release_rustflags "$host") cargo build --release --locked --target "$host" "$@" >&2 || return 1
  target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])') || return 1
  printf '%s\n' "$target_dir/$host/release"
}
