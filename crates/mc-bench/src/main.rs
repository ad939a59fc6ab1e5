//! `mc-bench`: the measurement side of `scripts/bench`. Each subcommand measures one thing
//! against services `scripts/bench` started, and prints a Markdown fragment;
//! `mc-bench report` splices fragments into BENCHMARKS.md.

// A report generator: printing Markdown to stdout is its job.
#![allow(clippy::print_stdout)]

mod gateway;
mod h5;
mod live;
mod queue;
mod report;
mod rls;
mod rules;
mod stats;

use std::process::ExitCode;

const USAGE: &str = "\
usage: mc-bench <command> [args]

  rls <database-url>                      RLS overhead on an indexed lookup
  login <api-url> <email> <password> <n>  sequential login latency (argon2id)
  fanout <relay-ws> <api> <token> <board> <sockets> <rate> <secs> <relay-pid>
                                          board sync fan-out on one relay
  fanout-ceiling <echo-ws> <sockets> <rate> <secs> <echo-pid>
                                          the same against board-echo
  board-echo <addr>                       minimal broadcaster (the fan-out ceiling)
  sse <api> <token> <board> <streams> <rate> <secs>
                                          SSE delivery and replay
  queue <database-url> <jobs>             job queue throughput, latency, priority
  queue-drain <database-url> <jobs> <n>   only the no-op drain, n rounds (for iterating)
  chaos-setup <database-url> <jobs>       enqueue jobs that record their effects
  chaos-worker <database-url>             run them until killed
  chaos-check <database-url> <jobs> <fault> <timeout-s>
                                          verify: nothing lost, nothing twice (fault:
                                          what was done to the workers, for the row)
  chat <redis-url> <gw,gw..> <method> <n> <concurrency> <label>
                                          chat.send (or health) round trips via relays
  h5-users <api> <email> <password> <n> <out>
                                          H5 users assigned to the simulated agents
  h5-load <ws,ws..> <users> <rate> <secs> <label>
                                          chat round trips at a fixed offered rate
  h5-echo <addr>                          the echo-server ceiling for h5-load
  h5-idle <ws> <users> <sockets> <relay-pid> <sources>
                                          idle chat sockets and relay RSS per socket
  rules-throughput <api> <token> <redis-url> <events> <new-rules> <gated|ungated> <label>
                                          events evaluated per second by one mc-rules
  rules-latency <api> <token> <n> <rate>  committed event -> suggestion on SSE
  report <file> <section>                 replace <section> of <file> with stdin
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(async {
        match args
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["rls", url] => rls::run(url).await,
            [
                "rules-throughput",
                api,
                token,
                redis,
                events,
                rules,
                shape,
                label,
            ] => {
                let gated = match *shape {
                    "gated" => true,
                    "ungated" => false,
                    other => anyhow::bail!("rule shape {other:?}: expected gated or ungated"),
                };
                rules::throughput(
                    api,
                    token,
                    redis,
                    events.parse()?,
                    (rules.parse()?, gated),
                    label,
                )
                .await
            }
            ["rules-latency", api, token, n, rate] => {
                rules::latency(api, token, n.parse()?, rate.parse()?).await
            }
            ["login", api, email, password, n] => {
                stats::login(api, email, password, n.parse()?).await
            }
            ["fanout", relay, api, token, board, sockets, rate, secs, pid] => {
                live::fanout(
                    relay,
                    live::Source::Rest { api, token, board },
                    sockets.parse()?,
                    rate.parse()?,
                    secs.parse()?,
                    pid.parse()?,
                )
                .await
            }
            ["fanout-ceiling", url, sockets, rate, secs, pid] => {
                live::fanout(
                    url,
                    live::Source::Echo,
                    sockets.parse()?,
                    rate.parse()?,
                    secs.parse()?,
                    pid.parse()?,
                )
                .await
            }
            ["board-echo", addr] => live::board_echo(addr).await,
            ["sse", api, token, board, streams, rate, secs] => {
                live::sse(
                    api,
                    token,
                    board,
                    streams.parse()?,
                    rate.parse()?,
                    secs.parse()?,
                )
                .await
            }
            ["chat", redis, gateways, method, n, concurrency, label] => {
                gateway::run(
                    redis,
                    gateways,
                    method,
                    n.parse()?,
                    concurrency.parse()?,
                    label,
                )
                .await
            }
            ["queue", url, n] => queue::run(url, n.parse()?).await,
            ["queue-drain", url, n, rounds] => {
                queue::drain_only(url, n.parse()?, rounds.parse()?).await
            }
            ["chaos-setup", url, n] => queue::chaos_setup(url, n.parse()?).await,
            ["chaos-worker", url] => queue::chaos_worker(url).await,
            ["chaos-check", url, n, fault, timeout] => {
                queue::chaos_check(url, n.parse()?, fault, timeout.parse()?).await
            }
            ["h5-users", api, email, password, n, out] => {
                h5::users(api, email, password, n.parse()?, out).await
            }
            ["h5-load", urls, users, rate, secs, label] => {
                h5::load(urls, users, rate.parse()?, secs.parse()?, label).await
            }
            ["h5-echo", addr] => h5::echo(addr).await,
            ["h5-idle", url, users, sockets, pid, sources] => {
                h5::idle(url, users, sockets.parse()?, pid.parse()?, sources.parse()?).await
            }
            ["report", file, section] => report::splice(file, section),
            _ => {
                eprint!("{USAGE}");
                std::process::exit(2);
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mc-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}
