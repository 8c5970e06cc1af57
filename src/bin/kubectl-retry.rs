//! `kubectl-retry`: the kubectl plugin of tekton-retry. On PATH, `kubectl retry …` runs it.
//! Thin main: parse (usage errors exit 2), run, exit with the command's code (`tekton_retry::plugin`).

use clap::Parser;
use tekton_retry::plugin::{app, cli::Cli};

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(app::run(cli));
    std::process::exit(code);
}
