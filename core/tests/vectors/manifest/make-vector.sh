#!/usr/bin/env bash
# Makes the eyas signed-manifest test vector with OpenSSL 3 and coreutils only (see core/MANIFEST-FORMAT.md).
# Outputs: bundle.bin, manifest.bin (the postcard record), manifest.sig (Ed25519 over manifest.bin),
# bundle.bin.manifest (= manifest.bin || manifest.sig), pub.pem / pub.der (the public key).
# The private key is created in a temp dir and deleted; re-running gives a new key and signature.
set -euo pipefail
cd "$(dirname "$0")"

COMPATIBLE=eyas-test
VERSION=2026.11.0

# A deterministic 10000-byte "bundle".
{ yes 'eyas test bundle' || true; } | head -c 10000 > bundle.bin

# postcard varint (LEB128, unsigned): 7 bits per byte, low group first, high bit = more follows.
varint() {
  local v=$1 out=''
  while (( v >= 0x80 )); do
    out+=$(printf '\\x%02x' $(( (v & 0x7f) | 0x80 )))
    v=$(( v >> 7 ))
  done
  out+=$(printf '\\x%02x' "$v")
  printf '%s' "$out"
}

size=$(stat -c %s bundle.bin)
{
  printf '\x01'                                            # format version 1
  printf "$(varint ${#COMPATIBLE})"; printf '%s' "$COMPATIBLE"   # compatible: len + UTF-8
  printf "$(varint ${#VERSION})";    printf '%s' "$VERSION"      # version:    len + UTF-8
  printf "$(varint "$size")"                               # size: varint u64
  openssl dgst -sha256 -binary bundle.bin                  # sha256: 32 raw bytes
} > manifest.bin

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl genpkey -algorithm ed25519 -out "$tmp/key.pem"
openssl pkey -in "$tmp/key.pem" -pubout -out pub.pem
openssl pkey -pubin -in pub.pem -outform DER -out pub.der
openssl pkeyutl -sign -inkey "$tmp/key.pem" -rawin -in manifest.bin -out manifest.sig
openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in manifest.bin -sigfile manifest.sig
cat manifest.bin manifest.sig > bundle.bin.manifest
ls -l bundle.bin manifest.bin manifest.sig bundle.bin.manifest pub.pem pub.der
