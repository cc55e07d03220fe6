//! `eyas`: the OTA agent binary (being built).
fn main() {
    eprintln!("eyas: the agent is not built yet");
    std::process::exit(2);
}
