# Cross builds (issue 10): eyas and eyas-bootloader for aarch64-unknown-linux-gnu and
# armv7-unknown-linux-gnueabihf, statically linked (+crt-static) with Debian's rustc-web and its
# std for those targets (installed by .ci/install-deps), sizes printed; then `cargo test` of
# eyas-core and eyas-bootloader-glue for aarch64 under qemu-aarch64-static, so the byte-level
# codecs are proven on the target architecture. Same command as users run: ./run cross test.
set -euo pipefail
cd "$(dirname "$0")/../.."
./run cross test
