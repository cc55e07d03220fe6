# Shared helpers for the hawkbit-sim scripts (sourced, not executed).
# HAWKBIT_URL and HAWKBIT_AUTH must be set by the caller.

# json_get FILTER: reads JSON on stdin, prints a value addressed like  .a.b.0.c  (python3, no jq needed)
json_get() {
  python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in [p for p in sys.argv[1].split(".") if p]:
    v = v[int(k)] if isinstance(v, list) else v.get(k)
    if v is None:
        break
print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else v))
' "$1"
}

# mgmt METHOD PATH [JSON-BODY]: Management API call; prints the body, fails on HTTP >= 400.
mgmt() {
  local method=$1 path=$2 body=${3-}
  local out code
  out=$(mktemp)
  if [ -n "$body" ]; then
    code=$(curl -sS -o "$out" -w '%{http_code}' -u "$HAWKBIT_AUTH" -X "$method" \
      -H 'Content-Type: application/json' -H 'Accept: application/hal+json' --data-binary "$body" "$HAWKBIT_URL/rest/v1$path")
  else
    code=$(curl -sS -o "$out" -w '%{http_code}' -u "$HAWKBIT_AUTH" -X "$method" -H 'Accept: application/hal+json' "$HAWKBIT_URL/rest/v1$path")
  fi
  cat "$out"; rm -f "$out"
  if [ "$code" -ge 400 ]; then
    echo "mgmt: $method $path -> HTTP $code" >&2
    return 1
  fi
}

# free_port: prints a TCP port that is free on 127.0.0.1
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_nginx DIR ROOT: nginx serving ROOT on a free loopback port, its port in DIR/port, one
# access-log line per request in DIR/access.log: `uri status body_bytes_sent bytes_sent` (the bytes a
# client fetched, without and with headers). Its pid is appended to PIDS (the caller's cleanup ends
# it); returns 1 if it does not listen within 10 s (see DIR/error.log).
start_nginx() {
  local n=$1 root=$2 port i=0
  mkdir -p "$n/temp"
  port=$(free_port)
  cat >"$n/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
error_log $n/error.log;
pid $n/nginx.pid;
events { worker_connections 64; }
http {
  log_format bytes '\$request_uri \$status \$body_bytes_sent \$bytes_sent';
  access_log $n/access.log bytes;
  client_body_temp_path $n/temp; proxy_temp_path $n/temp; fastcgi_temp_path $n/temp;
  uwsgi_temp_path $n/temp; scgi_temp_path $n/temp;
  sendfile on;
  server { listen 127.0.0.1:$port; root $root; }
}
NGINX
  "$(command -v nginx || echo /usr/sbin/nginx)" -c "$n/nginx.conf" -p "$n/" 2>>"$n/error.log" & PIDS+=("$!")
  until bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 50 ] || { echo "start_nginx: nginx did not start (see $n/error.log)" >&2; return 1; }
    sleep 0.2
  done
  echo "$port" >"$n/port"
}

# start_sim WORKDIR [ARGS…]: starts target/…/hawkbit-sim on a free port; sets SIM_PID and HAWKBIT_URL.
start_sim() {
  local dir=$1; shift
  "$SIM_BIN" --listen 127.0.0.1:0 "$@" >"$dir/sim.out" 2>"$dir/sim.err" &
  SIM_PID=$!
  for _ in $(seq 1 100); do
    if grep -q 'listening on' "$dir/sim.out" 2>/dev/null; then
      HAWKBIT_URL=$(sed -n 's/^hawkbit-sim listening on //p' "$dir/sim.out" | head -1)
      export HAWKBIT_URL
      return 0
    fi
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "start_sim: hawkbit-sim did not start:" >&2
  cat "$dir/sim.err" >&2
  return 1
}

# test_pki DIR ORG: a throw-away signing PKI made with openssl (real-peers.md §2.1): a CA
# (DIR/ca.cert.pem, DIR/ca.key.pem) and a code-signing leaf without EKU (DIR/signer.cert.pem,
# DIR/signer.key.pem), as RAUC and SWUpdate both accept. openssl's output goes to DIR/openssl.log.
test_pki() {
  local dir=$1 org=$2
  mkdir -p "$dir"
  cat >"$dir/openssl.cnf" <<'CNF'
[ req ]
distinguished_name = dn
[ dn ]
[ v3_ca ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_leaf ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
CNF
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key.pem -out ca.cert.pem -days 30 \
      -subj "/O=$org/CN=$org CA" -config openssl.cnf -extensions v3_ca
    openssl req -newkey rsa:2048 -nodes -keyout signer.key.pem -out signer.csr.pem \
      -subj "/O=$org/CN=$org signer" -config openssl.cnf
    openssl x509 -req -in signer.csr.pem -CA ca.cert.pem -CAkey ca.key.pem -CAcreateserial \
      -out signer.cert.pem -days 30 -extfile openssl.cnf -extensions v3_leaf
  ) >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; return 1; }
}
