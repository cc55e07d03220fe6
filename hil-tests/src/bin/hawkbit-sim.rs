//! `hawkbit-sim` (being built).
fn main() {
    eprintln!("hawkbit-sim: not built yet");
    std::process::exit(2);
}
