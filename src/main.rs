//! The `fhirpipe` binary: everything lives in the library; this maps its result to an exit code.

fn main() {
    fhirpipe::util::tune_allocator();
    // A closed stdout (`fhirpipe check … | head`) is not an error worth a panic message.
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        if msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        eprintln!("fhirpipe: internal error: {msg}\nPlease report this with the command you ran.");
    }));
    std::process::exit(fhirpipe::cli::main());
}
