//! Splices a section into BENCHMARKS.md between `<!-- bench:NAME -->` markers, keeping
//! every other section as it was.

use std::io::Read;

pub fn splice(file: &str, section: &str) -> anyhow::Result<()> {
    let mut fragment = String::new();
    std::io::stdin().read_to_string(&mut fragment)?;
    let begin = format!("<!-- bench:{section} -->");
    let end = format!("<!-- /bench:{section} -->");
    let block = format!("{begin}\n{}\n{end}", fragment.trim_end());
    let current = std::fs::read_to_string(file).unwrap_or_else(|_| {
        "# Benchmarks\n\nEvery figure here was produced by a command in this repository \
         (`scripts/bench <section>`), on the machine named in its section, with a baseline \
         measured in the same run. Timed assertions do not belong in tests; they live here.\n"
            .to_owned()
    });
    let updated = match (current.find(&begin), current.find(&end)) {
        (Some(start), Some(stop)) if stop > start => {
            format!(
                "{}{}{}",
                &current[..start],
                block,
                &current[stop + end.len()..]
            )
        }
        _ => format!("{}\n{}\n", current.trim_end(), block),
    };
    std::fs::write(file, updated)?;
    Ok(())
}
