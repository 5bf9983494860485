//! `conntrack`: the drop-in for conntrack-tools 1.4.7's `conntrack` (see the library,
//! `conntrack_cli`, for what it does and how it differs).

fn main() -> std::process::ExitCode {
    conntrack_cli::app::main()
}
