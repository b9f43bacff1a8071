//! Placeholder: the manager binary arrives with the controllers.
fn main() {
    eprintln!("capd-manager: not implemented yet");
    std::process::exit(1);
}
