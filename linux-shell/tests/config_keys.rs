//! The configuration key table (`eyas_linux::config::KEYS`) against the parser: a key left out
//! reads as the table's default, every key of the table is accepted without a warning and is
//! read, keys outside the table warn. (That the parser reads no key outside the table is checked
//! when it compiles: it names every key through a compile-time lookup in `KEYS`.)

use std::path::Path;

use eyas_linux::config::{self, ConfigError, GROUPS, KEYS, Key, KeyDefault, Loaded, NAME};

const PATH: &str = "/etc/eyas.conf";

/// What `<NAME>` is in the test files.
const SOME_NAME: &str = "app";

/// The smallest valid file, plus the keys without which others are not read: `mqtt_host` and
/// `mqtt_access_token` (else the other `mqtt_*` keys are ignored with a warning) and a part
/// handler (else `part.<NAME>.timeout` is refused).
const MINIMAL: &[(&str, &str, &str)] = &[
    ("client", "hawkbit_server", "hawkbit.example:8443"),
    ("client", "target_name", "dev-1"),
    ("client", "auth_token", "tok"),
    ("client", "bundle_download_location", "/data/bundle.raucb"),
    ("device", "product", "Terminator"),
    ("eyas", "mqtt_host", "tb.example"),
    ("eyas", "mqtt_access_token", "tb-token"),
    ("eyas", "part.app.command", "/usr/lib/eyas/app-hook"),
];

/// A valid value for a row without a default, and what the file needs besides.
struct Sample {
    value: &'static str,
    /// Lines the file needs too.
    with: &'static [(&'static str, &'static str, &'static str)],
    /// Keys of [`MINIMAL`] the file must not have.
    without: &'static [&'static str],
    /// The one warning expected (a key accepted and ignored on purpose).
    warning: Option<&'static str>,
}

const fn value(value: &'static str) -> Sample {
    Sample {
        value,
        with: &[],
        without: &[],
        warning: None,
    }
}

/// The sample of a row without a default; a row missing here fails the tests until one is added.
fn sample(k: &Key) -> Sample {
    const MTLS_KEY: (&str, &str, &str) = ("client", "ssl_key", "/etc/eyas/key.pem");
    const MTLS_CERT: (&str, &str, &str) = ("client", "ssl_cert", "/etc/eyas/cert.pem");
    match (k.group, k.name) {
        ("client", "hawkbit_server") => value("[::1]:8443"),
        ("client", "target_name") => value("dev-2"),
        ("client", "auth_token") => value("tok-2"),
        ("client", "gateway_token") => Sample {
            without: &["auth_token"],
            ..value("gw-token")
        },
        ("client", "ssl_key") => Sample {
            with: &[MTLS_CERT],
            without: &["auth_token"],
            ..value(MTLS_KEY.2)
        },
        ("client", "ssl_cert") => Sample {
            with: &[MTLS_KEY],
            without: &["auth_token"],
            ..value(MTLS_CERT.2)
        },
        ("client", "ssl_engine") => Sample {
            warning: Some("ssl_engine: OpenSSL engines are not supported"),
            ..value("pkcs11")
        },
        ("client", "bundle_download_location") => value("/data/other.raucb"),
        ("device", _) => value("T-1000"),
        ("eyas", "mqtt_host") => value("tb-2.example"),
        ("eyas", "mqtt_access_token") => value("tb-token-2"),
        ("eyas", "mqtt_ca_file") => value("/etc/eyas/tb-ca.pem"),
        ("eyas", "manifest_public_keys") => {
            value("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        }
        ("eyas", "health_check_command") => value("/usr/bin/healthy"),
        ("eyas", "confirmation_command") => Sample {
            with: &[("eyas", "confirmation", "command")],
            ..value("/usr/bin/ask")
        },
        ("eyas", "poll_min") => value("30"),
        ("eyas", "poll_max") => value("01:00:00"),
        ("eyas", "proxy") => value("http://proxy:3128"),
        ("eyas", "ca_file") => value("/etc/eyas/ca.pem"),
        ("eyas", "part.<NAME>.command") => value("/usr/lib/eyas/other-hook"),
        ("eyas", "installed_name") => value("Factory image"),
        ("eyas", "installed_version") => value("2024.05-1"),
        ("eyas", "casync_store") => value("https://updates.example/product.castr/"),
        (group, name) => panic!("no sample value for [{group}] {name}: add one to sample()"),
    }
}

/// The key as written in the test files.
fn written(k: &Key) -> String {
    k.name.replace(NAME, SOME_NAME)
}

/// [`MINIMAL`] without the keys in `without`, with `extra` (group, key, value) lines added at
/// the end of their groups (a repeated key keeps the last value, as in GLib).
fn file(extra: &[(&str, String, String)], without: &[&str]) -> String {
    let mut text = String::new();
    for (group, _) in GROUPS {
        text.push_str(&format!("[{group}]\n"));
        for (_, key, value) in MINIMAL
            .iter()
            .filter(|(g, key, _)| g == group && !without.contains(key))
        {
            text.push_str(&format!("{key}={value}\n"));
        }
        for (_, key, value) in extra.iter().filter(|(g, _, _)| g == group) {
            text.push_str(&format!("{key}={value}\n"));
        }
    }
    text
}

fn parse(text: &str) -> Result<Loaded, ConfigError> {
    config::parse(Path::new(PATH), text)
}

/// The file that sets `k` to `value`, with the lines its sample needs.
fn file_setting(k: &Key, value: &str) -> String {
    let (with, without) = match k.default {
        KeyDefault::Value(_) => (&[][..], &[][..]),
        KeyDefault::Required(_) | KeyDefault::Unset(_) => {
            let s = sample(k);
            (s.with, s.without)
        }
    };
    let mut extra: Vec<(&str, String, String)> = with
        .iter()
        .map(|(g, key, v)| (*g, (*key).to_owned(), (*v).to_owned()))
        .collect();
    extra.push((k.group, written(k), value.to_owned()));
    file(&extra, without)
}

#[test]
fn a_key_left_out_has_the_tables_default() {
    let base = parse(&file(&[], &[])).expect("the minimal file is valid");
    assert!(base.warnings.is_empty(), "{:?}", base.warnings);
    let mut all = Vec::new();
    for k in KEYS {
        let Some(default) = k.default.value() else {
            continue;
        };
        // The table's default text, read by the parser like any value in the file, must give
        // the configuration the parser makes when the key is left out.
        let text = file(&[(k.group, written(k), default.to_owned())], &[]);
        let set = parse(&text).unwrap_or_else(|e| panic!("{}={default} is refused: {e}", k.name));
        assert!(set.warnings.is_empty(), "{}: {:?}", k.name, set.warnings);
        assert_eq!(
            set.config, base.config,
            "{}={default} written out differs from leaving the key out",
            k.name
        );
        all.push((k.group, written(k), default.to_owned()));
    }
    assert!(all.len() >= 25, "only {} keys with a default", all.len());
    // All of them at once: no warning, the same configuration.
    let set = parse(&file(&all, &[])).expect("every default at once is valid");
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
    assert_eq!(set.config, base.config);
    // The comparison sees a difference: one value off its default.
    let off = parse(&file(&[("client", "timeout".into(), "61".into())], &[])).expect("valid");
    assert_ne!(off.config, base.config);
}

#[test]
fn without_mqtt_and_parts_the_defaults_hold_too() {
    // The same, from the smallest file eyas accepts (no [eyas] group at all).
    let without = ["mqtt_host", "mqtt_access_token", "part.app.command"];
    let base = parse(&file(&[], &without)).expect("valid");
    assert!(base.warnings.is_empty(), "{:?}", base.warnings);
    for k in KEYS {
        let Some(default) = k.default.value() else {
            continue;
        };
        if k.name.starts_with("mqtt_") || k.name.starts_with("part.") {
            continue;
        }
        let set = parse(&file(
            &[(k.group, written(k), default.to_owned())],
            &without,
        ))
        .unwrap_or_else(|e| panic!("{}={default} is refused: {e}", k.name));
        assert!(set.warnings.is_empty(), "{}: {:?}", k.name, set.warnings);
        assert_eq!(set.config, base.config, "{}={default}", k.name);
    }
}

#[test]
fn every_table_key_is_accepted_without_a_warning() {
    for k in KEYS {
        let value = match k.default {
            KeyDefault::Value(v) => v,
            KeyDefault::Required(_) | KeyDefault::Unset(_) => sample(k).value,
        };
        let text = file_setting(k, value);
        let loaded =
            parse(&text).unwrap_or_else(|e| panic!("{}={value} is refused: {e}\n{text}", k.name));
        let expected = match k.default {
            KeyDefault::Value(_) => None,
            KeyDefault::Required(_) | KeyDefault::Unset(_) => sample(k).warning,
        };
        match expected {
            None => assert!(
                loaded.warnings.is_empty(),
                "{}: {:?}",
                k.name,
                loaded.warnings
            ),
            Some(w) => assert!(
                loaded.warnings.len() == 1 && loaded.warnings[0].contains(w),
                "{}: {:?}",
                k.name,
                loaded.warnings
            ),
        }
    }
}

#[test]
fn the_parser_reads_every_table_key() {
    // A value the parser refuses, naming the key, shows that it reads the key (an empty value
    // is refused for every key but these).
    for k in KEYS {
        let bad = match (k.group, k.name) {
            ("eyas", "manifest_public_keys") => "zz",
            _ => "",
        };
        let name = written(k);
        match parse(&file_setting(k, bad)) {
            Err(e) => assert_eq!(e.key, name, "{name}={bad:?}: {e}"),
            // `[device]` takes any attribute and value.
            Ok(l) if k.group == "device" => {
                assert!(l.config.device.contains(&(name, bad.to_owned())));
            }
            Ok(l) => panic!(
                "{name}={bad:?} is accepted (warnings {:?}): the parser does not read it",
                l.warnings
            ),
        }
    }
}

#[test]
fn keys_and_groups_outside_the_table_warn() {
    for (group, _) in GROUPS {
        if KEYS
            .iter()
            .any(|k| k.group == *group && k.matches("not_a_key"))
        {
            continue; // [device] takes any name
        }
        let l = parse(&file(&[(*group, "not_a_key".into(), "1".into())], &[])).expect("valid");
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert!(
            l.warnings[0].ends_with(&format!("not_a_key: unknown key in [{group}], ignored")),
            "{:?}",
            l.warnings
        );
    }
    let l = parse(&(file(&[], &[]) + "[other]\nk=v\n")).expect("valid");
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(
        l.warnings[0].contains("[other]: unknown group"),
        "{:?}",
        l.warnings
    );
}
