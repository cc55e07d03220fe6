//! The credential rule for artifact downloads: the DDI credentials (the `Authorization` value
//! and the client certificate) always go to the hawkBit server's own origin, and to any other
//! origin (a CDN, S3) only when [`ClientConfig::send_auth_on_download`] is set
//! (rauc-hawkbit-updater's `send_download_authentication`).
//!
//! An origin is `scheme://host[:port]` (RFC 6454): scheme and host compare ASCII
//! case-insensitively, and a missing port is the scheme's default (80 for `http`, 443 for
//! `https`). Only the host after the userinfo counts, so `https://hb.example@evil.example/`
//! is `evil.example`. Anything this reader does not take apart with certainty (a scheme other
//! than `http`/`https`, a backslash, white space, `%` or a second `@` in the authority, a bad
//! port, an empty host) has no origin and so never matches: when in doubt the credentials stay
//! at home.
//!
//! [`ClientConfig::send_auth_on_download`]: super::ClientConfig::send_auth_on_download

/// The parts of an origin, borrowed from the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Origin<'a> {
    https: bool,
    /// As written (an IPv6 literal with its brackets).
    host: &'a [u8],
    /// The explicit port, else the scheme's default.
    port: u16,
}

/// Whether the DDI credentials go with a download from `url`, the server being `server` (any URL
/// on the server, e.g. the controller URL) and `to_any_origin` being
/// `ClientConfig::send_auth_on_download`.
pub(super) fn credentials_allowed(url: &str, server: &str, to_any_origin: bool) -> bool {
    if to_any_origin {
        return true;
    }
    match (origin(url), origin(server)) {
        (Some(a), Some(b)) => {
            a.https == b.https && a.port == b.port && a.host.eq_ignore_ascii_case(b.host)
        }
        _ => false,
    }
}

/// The origin of an absolute `http(s)://authority…` URL (`None`: not one this reader is sure
/// of, or another scheme).
#[inline(never)]
fn origin(url: &str) -> Option<Origin<'_>> {
    let url = url.as_bytes();
    let (https, rest) = if let Some(r) = strip_prefix_ignore_case(url, b"https://") {
        (true, r)
    } else {
        (false, strip_prefix_ignore_case(url, b"http://")?)
    };
    // the authority ends at the path, query or fragment; `@` ends the userinfo (at most one)
    let mut end = rest.len();
    let mut host_start = 0;
    for (i, &b) in rest.iter().enumerate() {
        match b {
            b'/' | b'?' | b'#' => {
                end = i;
                break;
            }
            b'@' if host_start == 0 => host_start = i + 1,
            b'@' | b'\\' | b'%' | 0..=b' ' | 0x7f.. => return None,
            _ => {}
        }
    }
    let host_port = rest.get(host_start..end)?;
    // `:digits` at the end is the port (none or empty: the scheme's default)
    let mut host = host_port;
    let mut port = if https { 443 } else { 80 };
    if let Some(colon) = host_port.iter().rposition(|&b| b == b':') {
        let digits = host_port.get(colon + 1..)?;
        if digits.iter().all(u8::is_ascii_digit) {
            host = host_port.get(..colon)?;
            if !digits.is_empty() {
                port = parse_port(digits)?;
            }
        }
    }
    let valid = match host {
        // an IPv6 literal: `[` hex digits, `:` and `.` `]`
        [b'[', inner @ .., b']'] => {
            !inner.is_empty()
                && inner
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        _ => {
            !host.is_empty()
                && host
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        }
    };
    valid.then_some(Origin { https, host, port })
}

fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

fn parse_port(digits: &[u8]) -> Option<u16> {
    let mut n: u32 = 0;
    for &d in digits {
        let v = d.wrapping_sub(b'0');
        if v > 9 {
            return None;
        }
        n = n * 10 + u32::from(v);
        if n > u32::from(u16::MAX) {
            return None;
        }
    }
    u16::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::{credentials_allowed, origin};

    const SERVER: &str = "https://hawkbit.example:8443/DEFAULT/controller/v1/dev-01";

    fn same(url: &str, server: &str) -> bool {
        credentials_allowed(url, server, false)
    }

    #[test]
    fn the_servers_own_origin_gets_the_credentials_others_only_when_configured() {
        assert!(same("https://hawkbit.example:8443/DEFAULT/x", SERVER));
        assert!(!same("https://cdn.example/a", SERVER));
        assert!(credentials_allowed("https://cdn.example/a", SERVER, true));
        // a URL without an origin: only with the setting
        assert!(!same("garbage", SERVER));
        assert!(credentials_allowed("garbage", SERVER, true));
        // a server without an origin matches nothing
        assert!(!same("https://hb.example/a", "hb.example"));
    }

    #[test]
    fn scheme_and_host_compare_case_insensitively() {
        assert!(same("https://HAWKBIT.example:8443/a", SERVER));
        assert!(same("HTTPS://hawkbit.EXAMPLE:8443/a", SERVER));
        assert!(!same("http://hawkbit.example:8443/a", SERVER), "scheme");
        assert!(
            !same("https://hawkbit.example.:8443/a", SERVER),
            "trailing dot"
        );
        assert!(!same("https://hawkbit.example.evil:8443/a", SERVER));
        assert!(!same("https://evil-hawkbit.example:8443/a", SERVER));
    }

    #[test]
    fn default_ports_equal_explicit_ones() {
        assert!(same("https://hb.example:443/a", "https://hb.example"));
        assert!(same("https://hb.example/a", "https://hb.example:443/"));
        assert!(same("http://hb.example:80/a", "http://hb.example"));
        assert!(same("https://hb.example:/a", "https://hb.example"));
        assert!(same("https://hb.example:0443/a", "https://hb.example"));
        assert!(!same("https://hb.example:8443/a", "https://hb.example"));
        assert!(!same("https://hb.example:80/a", "https://hb.example"));
        assert!(!same("http://hb.example:443/a", "https://hb.example"));
        assert!(
            !same("https://hb.example/a", SERVER),
            "8443 is not the default"
        );
        assert!(!same(
            "https://hb.example:65536/a",
            "https://hb.example:65536"
        ));
        assert!(!same("https://hb.example:44x/a", "https://hb.example"));
        assert!(!same("https://hb.example:+443/a", "https://hb.example"));
        // other schemes have no origin here: never the server's
        assert!(!same("ftp://hb.example:21/a", "ftp://hb.example:21"));
    }

    #[test]
    fn the_host_after_the_userinfo_counts() {
        assert!(!same(
            "https://hb.example@evil.example/",
            "https://hb.example"
        ));
        assert!(!same(
            "https://hb.example:443@evil.example/",
            "https://hb.example"
        ));
        assert!(same("https://user:pw@hb.example/a", "https://hb.example"));
        assert!(same(
            "https://evil.example@hb.example/a",
            "https://hb.example"
        ));
        // ambiguous to other parsers: no origin
        assert!(!same(
            "https://a@evil.example@hb.example/",
            "https://hb.example"
        ));
        assert!(!same(
            "https://hb.example\\@evil.example/",
            "https://hb.example"
        ));
        assert!(!same(
            "https://hb.example%40evil.example/",
            "https://hb.example"
        ));
        assert!(!same("https://hb.exa mple/", "https://hb.exa mple"));
        assert!(!same("https://hb.example\t/", "https://hb.example"));
        // the authority ends at the path, query or fragment
        assert!(!same(
            "https://evil.example#@hb.example/",
            "https://hb.example"
        ));
        assert!(!same(
            "https://evil.example?@hb.example/",
            "https://hb.example"
        ));
        assert!(!same(
            "https://evil.example/@hb.example/",
            "https://hb.example"
        ));
        assert!(same(
            "https://hb.example?x=@evil.example",
            "https://hb.example"
        ));
    }

    #[test]
    fn ipv6_literals() {
        let server = "https://[2001:db8::1]:8443/DEFAULT";
        assert!(same("https://[2001:db8::1]:8443/a", server));
        assert!(same("https://[2001:DB8::1]:8443/a", server));
        assert!(!same("https://[2001:db8::1]/a", server), "port");
        assert!(!same("https://[2001:db8::2]:8443/a", server));
        assert!(same("https://[::1]/a", "https://[::1]:443"));
        assert!(same(
            "http://[::ffff:10.0.0.1]/a",
            "http://[::ffff:10.0.0.1]:80"
        ));
        // not spelled the same: not the same origin (no credentials rather than a guess)
        assert!(!same("https://[0:0::1]/a", "https://[::1]"));
        // malformed literals have no origin
        assert!(origin("https://[::1/a").is_none());
        assert!(origin("https://[]/a").is_none());
        assert!(origin("https://[::1]x/a").is_none());
        assert!(origin("https://[fe80::1%25eth0]/a").is_none());
        assert!(origin("https://[::g]/a").is_none());
        assert!(origin("https://::1/a").is_none(), "unbracketed");
    }

    #[test]
    fn urls_without_an_origin() {
        for url in [
            "",
            "nonsense",
            "hb.example/a",
            "//hb.example/a",
            "https:/hb.example/a",
            "https:hb.example",
            "https:///a",
            "https://:443/a",
            "https://user@/a",
            "1http://hb.example/a",
            "ht_tp://hb.example/a",
            "://hb.example/a",
            "https://hb.example:1:2/a",
            "https://héb.example/a",
            "https://hb]x/a",
            "https://hb[x]/a",
        ] {
            assert!(origin(url).is_none(), "{url:?}");
        }
        assert!(origin("https://hb.example").is_some());
        assert!(origin("https://hb.example:443").is_some());
        assert!(origin("svn+ssh://hb.example/a").is_none());
    }
}
