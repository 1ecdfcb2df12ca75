fn main() {
    eprintln!("petrel-tuner: not built yet");
    std::process::exit(2);
}
