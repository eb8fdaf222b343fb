//! `hvseed-firstboot`: the static agent placed on every installed host.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--version") {
        println!("hvseed-firstboot {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    eprintln!("hvseed-firstboot: usage: hvseed-firstboot (apply|run|verify) --plan PLAN ...");
    std::process::exit(2);
}
