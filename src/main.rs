use clap::Parser;

#[actix_web::main]
async fn main() {
    let cli = rcsync::cli::Cli::parse();
    if let Err(err) = rcsync::cli::run(cli).await {
        // One line, naming the cause chain, and a non-zero exit.
        let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
        eprintln!("error: {}", chain.join(": "));
        std::process::exit(1);
    }
}
