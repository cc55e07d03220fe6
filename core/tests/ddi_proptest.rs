//! Property tests: the DDI parsers never panic on arbitrary input, and what the writers
//! produce parses back to the same values.

use eyas_core::ddi::json::{Lexer, Value};
use eyas_core::ddi::*;
use eyas_core::record::{Phase, RECORD_MAX_LEN, Record, bootname, record_version};
use eyas_core::time::Duration;
use proptest::prelude::*;

fn all_parsers(data: &[u8]) {
    let _ = parse_controller_base(data);
    if let Ok(d) = parse_deployment_base(data) {
        assert_eq!(d.chunks().count(), d.chunk_count());
        for c in d.chunks() {
            assert_eq!(c.artifacts().count(), c.artifact_count());
            assert_eq!(c.metadata().count(), c.metadata_count());
        }
    }
    let _ = parse_confirmation_action(data);
    let _ = parse_installed_base(data);
    let _ = parse_cancel_action(data);
    if let Ok(l) = parse_artifacts(data) {
        assert_eq!(l.iter().count(), l.len());
    }
    let _ = peek_action_id(data);
    let _ = parse_confirmation_base(data);
    let _ = Record::decode(data);
    if let Ok(s) = core::str::from_utf8(data) {
        let _ = parse_sleep(s);
        let _ = parse_md5sum(s);
    }
}

/// JSON-looking noise: fragments of real documents glued together.
fn jsonish() -> impl Strategy<Value = String> {
    let frag = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"id\"",
        "\"42\"",
        "\"deployment\"",
        "\"chunks\"",
        "\"part\"",
        "\"os\"",
        "\"artifacts\"",
        "\"size\"",
        "123",
        "-1",
        "1e9",
        "true",
        "null",
        "\"_links\"",
        "\"href\"",
        "\"download\"",
        "\"hashes\"",
        "\"sha256\"",
        "\"config\"",
        "\"polling\"",
        "\"sleep\"",
        "\"00:05:00\"",
        "\"PT1H\"",
        "\"\\u00e9\"",
        "\"\\/\"",
        " ",
        "\"cancelAction\"",
        "\"stopId\"",
        "\"autoConfirm\"",
        "\"active\"",
        "\"version\"",
        "\"name\"",
        "\"filename\"",
        "\"metadata\"",
        "\"key\"",
        "\"value\"",
        "\"\\ud83d\"",
    ]);
    prop::collection::vec(frag, 0..80).prop_map(|v| v.concat())
}

fn text() -> impl Strategy<Value = String> {
    prop::string::string_regex("[a-zA-Z0-9 ./:_\\-\"\\\\\u{e9}\u{1F600}\n\t]{0,40}").unwrap()
}

fn json_escape(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '/' => o.push_str("\\/"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) > 0xffff => {
                let v = c as u32 - 0x10000;
                o.push_str(&format!(
                    "\\u{:04x}\\u{:04x}",
                    0xd800 + (v >> 10),
                    0xdc00 + (v & 0x3ff)
                ));
            }
            c if !c.is_ascii() => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

fn read_strings(json: &[u8]) -> Vec<String> {
    // collect every string value/key in document order
    fn walk(l: &mut Lexer<'_>, v: Value<'_>, out: &mut Vec<String>) {
        match v {
            Value::Object => {
                while let Some(k) = l.next_key().unwrap() {
                    out.push(k.to_string());
                    let v = l.value().unwrap();
                    walk(l, v, out);
                }
            }
            Value::Array => {
                while l.next_element().unwrap() {
                    let v = l.value().unwrap();
                    walk(l, v, out);
                }
            }
            Value::Str(s) => out.push(s.to_string()),
            _ => {}
        }
    }
    let mut l = Lexer::new(json);
    let v = l.value().unwrap();
    let mut out = Vec::new();
    walk(&mut l, v, &mut out);
    l.finish().unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_on_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        all_parsers(&data);
    }

    #[test]
    fn parsers_never_panic_on_jsonish(s in jsonish()) {
        all_parsers(s.as_bytes());
    }

    #[test]
    fn sleep_hms_round_trip(secs in 0u64..10_000_000) {
        let txt = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
        prop_assert_eq!(parse_sleep(&txt), Some(Duration::from_secs(secs)));
    }

    #[test]
    fn sleep_iso_round_trip(d in 0u64..400, h in 0u64..100, m in 0u64..100, s in 0u64..100, ms in 0u64..1000) {
        let txt = format!("P{d}DT{h}H{m}M{s}.{ms:03}S");
        let want = (((d * 24 + h) * 60 + m) * 60 + s) * 1000 + ms;
        prop_assert_eq!(parse_sleep(&txt), Some(Duration::from_millis(want)));
    }

    #[test]
    fn deployment_round_trip(
        id in 0u64..u64::MAX,
        chunks in prop::collection::vec(
            (text(), text(), text(), prop::collection::vec((text(), any::<u64>(), any::<[u8; 32]>(), any::<bool>()), 0..4)),
            0..4),
    ) {
        let mut cs = Vec::new();
        for (part, version, name, arts) in &chunks {
            let mut a = Vec::new();
            for (f, size, sha, has_sha) in arts {
                let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
                let hashes = if *has_sha { format!(r#"{{"sha256":"{hex}","x":[1]}}"#) } else { "{}".into() };
                a.push(format!(
                    r#"{{"filename":"{}","size":{size},"hashes":{hashes},"_links":{{"download-http":{{"href":"http:\/\/h\/{}"}}}}}}"#,
                    json_escape(f), json_escape(f)
                ));
            }
            cs.push(format!(
                r#"{{"part":"{}","version":"{}","name":"{}","artifacts":[{}],"unknown":{{"a":[null,true,1.5e3]}}}}"#,
                json_escape(part), json_escape(version), json_escape(name), a.join(",")
            ));
        }
        let doc = format!(r#"{{"id":"{id}","deployment":{{"download":"forced","chunks":[{}]}}}}"#, cs.join(","));
        let d = parse_deployment_base(doc.as_bytes()).unwrap();
        prop_assert_eq!(d.id, ActionId(id));
        prop_assert_eq!(d.chunk_count(), chunks.len());
        for (c, (part, version, name, arts)) in d.chunks().zip(&chunks) {
            prop_assert!(c.part.eq_str(part));
            prop_assert_eq!(&c.version.to_string(), version);
            prop_assert_eq!(&c.name.to_string(), name);
            prop_assert_eq!(c.artifact_count(), arts.len());
            for (a, (f, size, sha, has_sha)) in c.artifacts().zip(arts) {
                prop_assert_eq!(&a.filename.to_string(), f);
                prop_assert_eq!(a.size, *size);
                prop_assert_eq!(a.sha256, has_sha.then_some(*sha));
                prop_assert_eq!(a.download_url.unwrap().to_string(), format!("http://h/{f}"));
            }
        }
    }

    #[test]
    fn feedback_details_round_trip(
        details in prop::collection::vec(text(), 0..10),
        cnt in any::<u32>(), of in any::<Option<u32>>(), code in any::<Option<i32>>(), ts in any::<Option<u64>>(),
    ) {
        let refs: Vec<&str> = details.iter().map(String::as_str).collect();
        let fb = ActionFeedback {
            timestamp: ts,
            execution: Execution::Proceeding,
            finished: Finished::None,
            progress: Some(Progress { cnt, of }),
            code,
            details: &refs,
        };
        let mut buf = vec![0u8; 4096];
        let n = fb.write(&mut buf).unwrap();
        let strings = read_strings(&buf[..n]);
        let tail: Vec<String> = strings.iter().skip_while(|s| *s != "details").skip(1).cloned().collect();
        prop_assert_eq!(&tail, &details);
        let body = std::str::from_utf8(&buf[..n]).unwrap();
        let want_cnt = format!("\"cnt\":{}", cnt);
        prop_assert!(body.contains(&want_cnt));
        if let Some(c) = code {
            let want_code = format!("\"code\":{}", c);
            prop_assert!(body.contains(&want_code));
        }
        // too small a buffer is an error, never a panic or a truncated body
        for cap in [0, n / 2, n - 1] {
            prop_assert!(fb.write(&mut buf[..cap]).is_err());
        }
    }

    #[test]
    fn config_data_round_trip(
        pairs in prop::collection::vec(
            ("[a-zA-Z0-9 _\\-!@#$%^&*()+=\\[\\]{}|;:'\",.<>/\\\\?]{1,20}", "[a-zA-Z0-9 .\"\\\\]{0,20}"), 1..20),
    ) {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut buf = vec![0u8; 8192];
        let n = ConfigData { mode: ConfigMode::Replace, data: &refs }.write(&mut buf).unwrap();
        let strings = read_strings(&buf[..n]);
        let mut want = vec!["mode".to_string(), "replace".into(), "data".into()];
        for (k, v) in &pairs { want.push(k.clone()); want.push(v.clone()); }
        prop_assert_eq!(strings, want);
    }

    #[test]
    fn record_round_trip(
        id in any::<u64>(), phase in 0u8..6, slot in any::<Option<bool>>(), v in "\\PC{0,60}",
        names in ("[^\\x00-\\x1f\\x7f]{1,4}", "[A-Za-z0-9._-]{1,16}"),
        attempt in any::<u8>(), na in any::<u8>(), nc in any::<u8>(), st in any::<u16>(), flip in any::<usize>(),
    ) {
        let phase = match phase {
            0 => Phase::Downloading,
            1 => Phase::AwaitingWindow,
            2 => Phase::Installing,
            3 => Phase::Rebooting,
            4 => Phase::Reporting { success: true, reason: attempt },
            _ => Phase::Reporting { success: false, reason: na },
        };
        let mut r = Record::new(ActionId(id), phase);
        r.target_slot = slot.and_then(|b| bootname(if b { &names.0 } else { &names.1 }).ok());
        r.from_slot = bootname(&names.1).ok();
        r.from_version = record_version(&v);
        r.to_version = record_version(&v.repeat(3));
        r.attempt = attempt;
        r.next_artifact = na;
        r.next_chunk = nc;
        r.status_entries = st;
        r.resume_offset = u64::from(st) * 0x1_0001;
        let mut buf = [0u8; RECORD_MAX_LEN];
        let bytes = r.encode(&mut buf).unwrap().to_vec();
        prop_assert_eq!(Record::decode(&bytes).unwrap(), r);
        let mut bad = bytes.clone();
        let i = flip % (bad.len() * 8);
        bad[i / 8] ^= 1 << (i % 8);
        prop_assert!(Record::decode(&bad).is_err());
    }
}
