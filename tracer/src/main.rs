//! The `tracer` command. All of it lives in the library; see `tracer::cli`.

fn main() -> std::process::ExitCode {
    tracer::cli::main()
}
