use clap::Parser;

fn main() {
    llq::output::install_signal_cleanup();
    let cli = llq::cli::Cli::parse();
    if let Err(e) = llq::cli::run(cli) {
        eprintln!("llq: error: {e}");
        std::process::exit(e.exit_code());
    }
}
