# Cortex-M4 proof: build core/firmware-m4 for thumbv7em-none-eabihf with the Debian toolchain
# (rustc-web + rust-web-src, RUSTC_BOOTSTRAP=1, -Zbuild-std=core, sha2_backend_soft="compact"), run it
# under QEMU mps2-an386 with semihosting, and check the budgets: flash <= 64 KiB, static RAM <= 8 KiB,
# peak stack (painted) <= 8 KiB.
#
# Two images are built:
#   core    ddi parse + streamed verification + signed manifest + slot transitions (no Client)
#   client  the same plus one full deployment driven through eyas_core::client::Client
# A budget overrun fails the step unless core/firmware-m4/budget-waivers.txt names it
# (`<image> <metric> <reason>`): a waiver is printed on every run, so it cannot be forgotten.
set -euo pipefail
cd "$(dirname "$0")/../../core/firmware-m4"

export RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc
# RUSTFLAGS from the environment would replace the target rustflags of .cargo/config.toml.
unset RUSTFLAGS CARGO_TARGET_DIR CARGO_BUILD_TARGET
CARGO=/usr/bin/cargo
SIZE=llvm-size-22
OBJDUMP=llvm-objdump-22
FILT=llvm-cxxfilt-22
for tool in "$CARGO" "$RUSTC" "$SIZE" "$OBJDUMP" qemu-system-arm; do
  command -v "$tool" >/dev/null || { echo "firmware-m4: $tool missing (run .ci/install-deps)" >&2; exit 1; }
done

FLASH_BUDGET=${EYAS_FW_FLASH_BUDGET:-65536}
RAM_BUDGET=${EYAS_FW_RAM_BUDGET:-8192}
STACK_BUDGET=${EYAS_FW_STACK_BUDGET:-8192}
ELF=target/thumbv7em-none-eabihf/release/eyas-firmware-m4
WAIVERS=budget-waivers.txt
failed=0

section() { # section NAME -> size in bytes (0 if absent)
  "$SIZE" -A "$1" | awk -v s="$2" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'
}

check() { # check IMAGE METRIC VALUE BUDGET
  local image=$1 metric=$2 value=$3 budget=$4 waiver
  if [ "$value" -le "$budget" ]; then
    printf '  %-6s %-12s %7d / %7d  ok\n' "$image" "$metric" "$value" "$budget"
    return
  fi
  waiver=$(awk -v i="$image" -v m="$metric" '$1 == i && $2 == m { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }' "$WAIVERS" 2>/dev/null || true)
  if [ -n "$waiver" ]; then
    printf '  %-6s %-12s %7d / %7d  OVER BUDGET (waived: %s)\n' "$image" "$metric" "$value" "$budget" "$waiver"
  else
    printf '  %-6s %-12s %7d / %7d  OVER BUDGET\n' "$image" "$metric" "$value" "$budget"
    failed=1
  fi
}

run_image() { # run_image NAME CARGO-ARGS...
  local name=$1; shift
  echo "firmware-m4: building image '$name' ($*)"
  "$CARGO" build --release --locked "$@"
  local elf=target/fw-$name.elf
  cp "$ELF" "$elf"
  local out rc=0
  out=$(timeout 120 qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic -monitor none \
          -semihosting-config enable=on,target=native -kernel "$elf" </dev/null 2>&1) || rc=$?
  echo "$out" | sed 's/^/    | /'
  if [ "$rc" -ne 0 ] || ! grep -q '^checks_failed=0$' <<<"$out"; then
    echo "firmware-m4: image '$name' failed under QEMU (exit $rc)" >&2
    failed=1
  fi
  local vt text rodata data bss uninit exidx flash ram peak
  vt=$(section "$elf" .vector_table); text=$(section "$elf" .text); rodata=$(section "$elf" .rodata)
  data=$(section "$elf" .data); bss=$(section "$elf" .bss); uninit=$(section "$elf" .uninit)
  exidx=$(section "$elf" .ARM.exidx)
  flash=$((vt + text + rodata + data + exidx))
  ram=$((data + bss + uninit))
  peak=$(sed -n 's/^peak_stack=\([0-9]*\)$/\1/p' <<<"$out")
  peak=${peak:-999999}
  echo "firmware-m4: image '$name': .text=$text .rodata=$rodata .data=$data .bss=$bss (.vector_table=$vt)"
  "$SIZE" "$elf" | sed 's/^/    /'
  grep -E '^size_of ' <<<"$out" | sed 's/^/    /' || true
  echo "  largest stack frames (sub sp in the prologue):"
  "$OBJDUMP" -d --no-show-raw-insn "$elf" | "$FILT" | awk '
    /^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn); n = 0; next }
    { n++ }
    n <= 6 && /sub(\.w|w)?[ \t]+sp, (sp, )?#/ {
      v = $NF; sub(/^#/, "", v); v = (v ~ /^0x/) ? strtonum_hex(v) : v + 0; frame[fn] += v
    }
    function strtonum_hex(h,   i, c, r) { r = 0; h = tolower(substr(h, 3))
      for (i = 1; i <= length(h); i++) { c = index("0123456789abcdef", substr(h, i, 1)) - 1; r = r * 16 + c }
      return r }
    END { for (f in frame) printf "%8d  %s\n", frame[f], substr(f, 1, 110) }' | sort -rn | sed -n '1,8s/^/  /p'
  echo "firmware-m4: budgets for image '$name':"
  check "$name" flash "$flash" "$FLASH_BUDGET"
  check "$name" static-ram "$ram" "$RAM_BUDGET"
  check "$name" peak-stack "$peak" "$STACK_BUDGET"
}

run_image core --no-default-features
run_image client
active=$(grep -v '^#' "$WAIVERS" 2>/dev/null | sed '/^$/d' || true)
if [ -n "$active" ]; then
  echo "firmware-m4: active waivers ($WAIVERS):"
  sed 's/^/  /' <<<"$active"
else
  echo "firmware-m4: no active waivers"
fi
[ "$failed" -eq 0 ] || { echo "firmware-m4: FAILED" >&2; exit 1; }
echo "firmware-m4: ok"
