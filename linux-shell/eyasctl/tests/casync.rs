//! `eyasctl publish --casync` against hawkbit-sim with real `rauc bundle`, `rauc convert` and casync:
//! the index bundle is the artifact, the chunk store grows only by a release's new chunks, and the
//! download a device on the previous release will make is printed.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::nginx::{DavNginx, Hit};
use support::{Fx, Run, path};

/// Two reproducible 16 MiB ext4 rootfs images (hil-tests/scripts/repro-ext4.sh) whose trees differ
/// in one 256 KiB file and the version file, each in a signed plain bundle; a test PKI in `pki/`.
fn two_releases(d: &Path) {
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/../../hil-tests/scripts");
    let script = format!(
        r#"set -e
. {scripts}/lib.sh
test_pki pki Test
mkdir -p t1/usr/bin t1/etc
for i in $(seq 10 29); do head -c $((i * 9000)) /dev/urandom > t1/usr/bin/tool$i; done
head -c 262144 /dev/urandom > t1/usr/bin/patchme
echo 1.0.0 > t1/etc/sw-version
cp -a t1 t2
head -c 262144 /dev/urandom > t2/usr/bin/patchme
echo 2.0.0 > t2/etc/sw-version
for v in 1 2; do
  mkdir -p b$v
  {scripts}/repro-ext4.sh t$v b$v/rootfs.ext4 16M >/dev/null
  printf '[update]\ncompatible=acme-board\nversion=%s.0.0\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.ext4\n' $v > b$v/manifest.raucm
  rauc bundle --cert=pki/signer.cert.pem --key=pki/signer.key.pem --keyring=pki/ca.cert.pem b$v v$v.raucb >/dev/null
done
"#
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(d)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "making two releases (needs openssl, e2fsprogs, rauc): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `eyasctl publish BUNDLE --casync --chunk-store STORE EXTRA…` with the test PKI.
fn publish_to(fx: &Fx, d: &Path, bundle: &str, store: &str, extra: &[&str]) -> Run {
    let pki = |f: &str| d.join("pki").join(f);
    let (cert, key, ca) = (
        pki("signer.cert.pem"),
        pki("signer.key.pem"),
        pki("ca.cert.pem"),
    );
    let bundle = d.join(bundle);
    let mut args = vec![
        "--json",
        "publish",
        path(&bundle),
        "--casync",
        "--chunk-store",
        store,
        "--cert",
        path(&cert),
        "--key",
        path(&key),
        "--keyring",
        path(&ca),
    ];
    args.extend_from_slice(extra);
    fx.ctl(&args)
}

fn publish(fx: &Fx, d: &Path, bundle: &str) -> Value {
    let r = publish_to(fx, d, bundle, path(&d.join("store.castr")), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    eprintln!("{}", r.stderr);
    r.json()
}

fn n(v: &Value, p: &str) -> u64 {
    v.pointer(p)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{p} in {v}"))
}

#[test]
fn publish_casync_uploads_the_index_and_adds_only_new_chunks() {
    let fx = Fx::new(Duration::from_millis(100));
    let d = fx.dir.path();
    two_releases(d);
    let full = std::fs::metadata(d.join("v2.raucb")).expect("v2").len();

    let v1 = publish(&fx, d, "v1.raucb");
    assert_eq!(v1["softwareModule"]["version"], "1.0.0", "{v1}");
    let index1 = n(&v1, "/casync/indexBundle/size");
    assert_eq!(
        n(&v1, "/artifact/size"),
        index1,
        "the index bundle is the artifact"
    );
    assert!(index1 < 64 * 1024, "an index bundle is small: {index1}");
    let all1 = n(&v1, "/casync/store/chunks");
    assert_eq!(n(&v1, "/casync/store/chunksAdded"), all1, "a new store");
    assert!(
        v1["casync"].get("patch").is_none(),
        "no previous release: {v1}"
    );

    let v2 = publish(&fx, d, "v2.raucb");
    let added = n(&v2, "/casync/store/chunksAdded");
    assert!(
        added > 0 && added * 5 < all1,
        "release 2 adds only its new chunks: {added} of {all1}"
    );
    assert_eq!(n(&v2, "/casync/store/chunks"), all1 + added);
    let patch = n(&v2, "/casync/patch/bytes");
    eprintln!("patch against release 1: {patch} of {full} bytes");
    // A 4 MiB image in ~66 chunks: a one-file patch touches a handful of them (about 10 %; 10.4 %
    // in one CI run), against ~100 % without a seed. The bound sits between, not at the figure.
    assert!(
        patch * 4 < full,
        "a one-file patch downloads a small fraction: {patch} of {full}"
    );
    assert!(
        v2["casync"]["patch"]["previous"]
            .as_str()
            .is_some_and(|p| p.ends_with("acme-board_1.0.0.raucb")),
        "{v2}"
    );
    assert_eq!(
        n(&v2, "/casync/patch/chunks"),
        added,
        "what a release-1 device fetches is what release 2 added"
    );

    // Again: the same index bundle, nothing added, hawkBit's artifact reused.
    let again = publish(&fx, d, "v2.raucb");
    assert_eq!(again["casync"]["indexBundle"]["reused"], true, "{again}");
    assert_eq!(n(&again, "/casync/store/chunksAdded"), 0);
    assert_eq!(again["artifact"]["reused"], true, "{again}");

    // Text output names the patch download; --casync without its store is a usage error.
    let r = fx.ctl(&["publish", path(&d.join("v1.raucb")), "--casync"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--chunk-store"), "{}", r.stderr);
}

/// Every file below `dir` except its `indexes/` (relative path → bytes): a store's chunks.
fn chunk_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).expect("read_dir").flatten() {
            let p = e.path();
            let rel = p
                .strip_prefix(base)
                .expect("below")
                .to_string_lossy()
                .into_owned();
            if rel == "indexes" {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn count(hits: &[Hit], method: &str, suffix: &str, status: u16) -> usize {
    hits.iter()
        .filter(|h| h.method == method && h.uri.ends_with(suffix) && h.status == status)
        .count()
}

/// The software modules and distribution sets hawkBit holds, and the POSTs it was sent.
fn hawkbit_state(fx: &Fx) -> (u64, u64, usize) {
    let total = |p: &str| {
        let (s, v) = fx.mgmt("GET", p, None);
        assert_eq!(s, 200, "GET {p}: {v}");
        n(&v, "/total")
    };
    let posts = fx.requests().iter().filter(|r| r.method == "POST").count();
    (total("/softwaremodules"), total("/distributionsets"), posts)
}

const STORE_USER: &str = "release-bot";
const STORE_PASSWORD: &str = "pw-Xq7-never-printed";

#[test]
fn publish_casync_to_a_url_store_puts_only_missing_chunks_before_hawkbit() {
    let fx = Fx::new(Duration::from_millis(100));
    let d = fx.dir.path();
    two_releases(d);
    let web = DavNginx::start(STORE_USER, STORE_PASSWORD);
    let store = web.url("store/acme.castr/");
    let remote = web.root.join("store/acme.castr");
    let creds = [
        "--store-user",
        STORE_USER,
        "--store-password",
        STORE_PASSWORD,
    ];
    let no_secret = |r: &Run| {
        assert!(
            !r.stdout.contains(STORE_PASSWORD) && !r.stderr.contains(STORE_PASSWORD),
            "the store password is printed: {r:?}"
        );
    };

    // Release 1 into an empty store: every chunk is PUT, then the index files; credentials as
    // options.
    let r = publish_to(&fx, d, "v1.raucb", &store, &creds);
    assert_eq!(r.code, 0, "{r:?}");
    no_secret(&r);
    eprintln!("{}", r.stderr);
    let v1 = r.json();
    let hits1 = web.hits();
    let all1 = n(&v1, "/casync/release/chunks");
    assert!(all1 > 20, "a 16 MiB image has many chunks: {v1}");
    assert_eq!(n(&v1, "/casync/store/chunksAdded"), all1, "{v1}");
    assert_eq!(n(&v1, "/casync/store/chunksSkipped"), 0, "{v1}");
    assert_eq!(
        n(&v1, "/casync/store/bytesAdded"),
        n(&v1, "/casync/release/bytes")
    );
    assert_eq!(
        count(&hits1, "PUT", ".cacnk", 201) as u64,
        all1,
        "{hits1:?}"
    );
    assert_eq!(count(&hits1, "HEAD", ".cacnk", 404) as u64, all1);
    for f in [
        "indexes/acme-board_1.0.0.raucb",
        "indexes/acme-board_1.0.0.source-sha256",
        "indexes/releases.txt",
    ] {
        assert_eq!(count(&hits1, "PUT", f, 201), 1, "PUT {f}: {hits1:?}");
    }
    // chunks first, the index bundle after the last chunk
    let last_chunk = hits1
        .iter()
        .rposition(|h| h.method == "PUT" && h.uri.ends_with(".cacnk"));
    let index_put = hits1
        .iter()
        .position(|h| h.method == "PUT" && h.uri.ends_with(".raucb"));
    assert!(last_chunk < index_put, "{hits1:?}");
    assert!(
        v1["casync"].get("patch").is_none(),
        "no previous release: {v1}"
    );
    assert_eq!(
        v1["casync"]["indexBundle"]["url"],
        format!("{store}indexes/acme-board_1.0.0.raucb")
    );
    // the artifact hawkBit got is the index bundle now in the store
    let index1 = std::fs::read(remote.join("indexes/acme-board_1.0.0.raucb")).expect("index");
    assert_eq!(n(&v1, "/artifact/size"), index1.len() as u64);

    // Release 2, credentials from the environment: HEAD finds release 1's chunks, only the new
    // ones are PUT; the previous index bundle is read from the store for the estimate.
    let before = web.hits().len();
    let r = fx.ctl_env(
        &[
            "--json",
            "publish",
            path(&d.join("v2.raucb")),
            "--casync",
            "--chunk-store",
            &store,
            "--cert",
            path(&d.join("pki/signer.cert.pem")),
            "--key",
            path(&d.join("pki/signer.key.pem")),
            "--keyring",
            path(&d.join("pki/ca.cert.pem")),
        ],
        &[
            ("EYAS_STORE_USER", STORE_USER),
            ("EYAS_STORE_PASSWORD", STORE_PASSWORD),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    no_secret(&r);
    eprintln!("{}", r.stderr);
    let v2 = r.json();
    let hits2 = web.hits()[before..].to_vec();
    let release2 = n(&v2, "/casync/release/chunks");
    let added = n(&v2, "/casync/store/chunksAdded");
    let skipped = n(&v2, "/casync/store/chunksSkipped");
    assert!(
        added > 0 && added * 5 < all1,
        "release 2 uploads only its new chunks: {added} of {all1}"
    );
    assert_eq!(added + skipped, release2, "{v2}");
    assert_eq!(
        count(&hits2, "PUT", ".cacnk", 201) as u64,
        added,
        "{hits2:?}"
    );
    assert_eq!(count(&hits2, "HEAD", ".cacnk", 200) as u64, skipped);
    assert_eq!(count(&hits2, "HEAD", ".cacnk", 404) as u64, added);
    assert_eq!(
        count(&hits2, "GET", "indexes/acme-board_1.0.0.raucb", 200),
        1,
        "{hits2:?}"
    );
    assert_eq!(
        v2["casync"]["patch"]["previous"],
        format!("{store}indexes/acme-board_1.0.0.raucb"),
        "{v2}"
    );
    assert_eq!(
        n(&v2, "/casync/patch/chunks"),
        added,
        "what a release-1 device fetches is what release 2 uploaded"
    );
    let text = r.stderr.clone();
    assert!(
        text.contains(&format!("{added} chunks uploaded"))
            && text.contains(&format!("{skipped} already there"))
            && text.contains("a device on http://"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(remote.join("indexes/releases.txt")).expect("list"),
        "acme-board_1.0.0\nacme-board_2.0.0\n"
    );

    // Again: the index bundle is read back from the store, nothing is PUT, hawkBit's artifact is
    // reused.
    let before = web.hits().len();
    let r = publish_to(&fx, d, "v2.raucb", &store, &creds);
    assert_eq!(r.code, 0, "{r:?}");
    let again = r.json();
    let hits3 = web.hits()[before..].to_vec();
    assert_eq!(again["casync"]["indexBundle"]["reused"], true, "{again}");
    assert_eq!(again["artifact"]["reused"], true, "{again}");
    assert_eq!(n(&again, "/casync/store/chunksAdded"), 0);
    assert_eq!(n(&again, "/casync/store/chunksSkipped"), release2);
    assert_eq!(
        n(&again, "/casync/patch/bytes"),
        n(&v2, "/casync/patch/bytes")
    );
    assert!(
        hits3.iter().all(|h| h.method != "PUT"),
        "nothing is uploaded again: {hits3:?}"
    );

    // The same two bundles published into a directory store (another hawkBit: a new conversion
    // is a new artifact) leave exactly the same chunk files, byte for byte.
    let fx_dir = Fx::new(Duration::from_millis(100));
    let dir_store = d.join("dir.castr");
    for b in ["v1.raucb", "v2.raucb"] {
        let r = publish_to(&fx_dir, d, b, path(&dir_store), &[]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let by_url = chunk_files(&remote);
    let by_dir = chunk_files(&dir_store);
    assert_eq!(by_url.len() as u64, all1 + added);
    assert_eq!(
        by_url.keys().collect::<Vec<_>>(),
        by_dir.keys().collect::<Vec<_>>(),
        "the same chunk files"
    );
    assert!(by_url == by_dir, "the same chunk bytes");
    assert_eq!(
        std::fs::read_to_string(dir_store.join("indexes/releases.txt")).expect("list"),
        "acme-board_1.0.0\nacme-board_2.0.0\n"
    );

    // Failures: the store refuses or is down → exit 1 naming the URL and the status, and hawkBit
    // got nothing new (no POST at all).
    let state = hawkbit_state(&fx);
    let as_v3 = ["--version", "3.0.0"];
    let cases: [(&str, Vec<&str>, u16, &str); 3] = [
        // wrong password: reads are open, the first chunk PUT is refused
        (
            "store/other.castr/",
            vec!["--store-user", STORE_USER, "--store-password", "wrong"],
            401,
            ".cacnk",
        ),
        // a location without WebDAV
        ("nodav/acme.castr/", vec![], 405, ".cacnk"),
        // down: retried 3 times, then given up (before the conversion)
        ("down/acme.castr/", vec![], 503, "source-sha256"),
    ];
    for (loc, extra, status, what) in cases {
        let url = web.url(loc);
        let before = web.hits().len();
        let mut args: Vec<&str> = as_v3.to_vec();
        args.extend(extra);
        let r = publish_to(&fx, d, "v1.raucb", &url, &args);
        assert_eq!(r.code, 1, "{loc}: {r:?}");
        eprintln!("{loc}: {}", r.stderr.trim_end());
        no_secret(&r);
        let err = r.json();
        assert_eq!(err["error"], "store", "{err}");
        assert_eq!(err["status"], status, "{err}");
        let failed = err["url"].as_str().unwrap_or_default().to_owned();
        assert!(
            failed.starts_with(&url) && failed.ends_with(what),
            "{loc}: {err}"
        );
        assert!(
            r.stderr.contains(&failed)
                && r.stderr.contains(&format!("HTTP {status}"))
                && r.stderr.contains("nothing was published to hawkBit"),
            "{loc}: {}",
            r.stderr
        );
        let hits = web.hits()[before..].to_vec();
        if status == 503 {
            assert_eq!(count(&hits, "GET", what, 503), 3, "{hits:?}");
            assert!(r.stderr.contains("after 3 attempts"), "{}", r.stderr);
        } else {
            assert_eq!(
                count(&hits, "PUT", ".cacnk", status),
                1,
                "one refused PUT, not retried: {hits:?}"
            );
            assert_eq!(count(&hits, "PUT", ".raucb", 201), 0, "{hits:?}");
        }
        assert_eq!(hawkbit_state(&fx), state, "{loc}: hawkBit got nothing new");
    }

    // Credentials inside the URL are refused (usage, exit 2) without echoing them.
    let inline = store.replacen(
        "http://",
        &format!("http://{STORE_USER}:{STORE_PASSWORD}@"),
        1,
    );
    let r = publish_to(&fx, d, "v1.raucb", &inline, &as_v3);
    assert_eq!(r.code, 2, "{r:?}");
    no_secret(&r);
    assert!(r.stderr.contains("--store-password"), "{}", r.stderr);
    assert_eq!(hawkbit_state(&fx), state);
}
