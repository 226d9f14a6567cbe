//! `tracer-lab`: the test bed's binary, which `tracer lab` and `tracer demo` run. See
//! `tracer_lab::cli`.

fn main() -> std::process::ExitCode {
    tracer_lab::cli::main()
}
