//! Minimal async HTTP/1.1 keep-alive client used by the load generator and the simulated devices
//! (no TLS; `Content-Length` and chunked bodies).
