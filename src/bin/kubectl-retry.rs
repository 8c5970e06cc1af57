//! `kubectl-retry`: the kubectl plugin of tekton-retry. On PATH, `kubectl retry …` runs it; named
//! `tkn-retry`, `tkn retry …` does. `kubectl-retry __complete …` answers shell completion
//! (`kubectl_complete-retry`). Thin main: parse (usage errors exit 2), run, exit with the
//! command's code (`tekton_retry_plugin`).

use tekton_retry_plugin::{app, complete, flavour};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
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
    if args.get(1).is_some_and(|a| a == "__complete") {
        let words: Vec<String> = args[2..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        print!("{}", runtime.block_on(complete::answer(&words)));
        return;
    }
    let cli = flavour::parse(args);
    let code = runtime.block_on(app::run(cli));
    std::process::exit(code);
}
