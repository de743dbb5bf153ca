//! The `sdss-clustering` binary: everything is in the `driver` library.

fn main() -> std::process::ExitCode {
    driver::main()
}
