//! Output helpers: `--json` documents on stdout, human text on stderr/stdout.

use serde_json::Value;

/// Prints one JSON document on stdout.
pub fn print_json(doc: &Value) {
    match serde_json::to_string_pretty(doc) {
        Ok(s) => println!("{s}"),
        Err(_) => println!("{doc}"),
    }
}

/// Prints a human line: on stdout normally, on stderr when stdout carries JSON.
pub fn say(json: bool, line: &str) {
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}
