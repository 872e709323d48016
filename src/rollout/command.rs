//! The command backend, for any proxy gantry does not speak to itself: a program run with one
//! verb after its own arguments (docs/rollout.md, "The command backend").
//!
//! ```text
//! PROGRAM read                   prints `stable WEIGHT REQUESTS ERRORS up|down` and the same
//!                                for `canary`: weights now, cumulative counts
//! PROGRAM weights STABLE CANARY  sets the weights
//! PROGRAM admit                  lets the canary take traffic (before any weight reaches it)
//! PROGRAM drain                  after a promotion: the old stable takes no new requests
//! ```
//! Exit 0 is done; anything else is an error that quotes the program's standard error.

use crate::rollout::sprt::Counts;
use crate::rollout::tool::Tool;
use crate::rollout::traffic::{Pool, Pools, Traffic};

pub struct CommandBackend<'a> {
    pub tool: Tool<'a>,
}

impl Traffic for CommandBackend<'_> {
    fn describe(&self) -> String {
        format!("the command `{}`", self.tool.argv.join(" "))
    }

    fn read(&mut self) -> Result<Pools, String> {
        let printed = self.tool.run(&["read".to_owned()])?;
        parse(&printed).map_err(|error| {
            format!(
                "`{} read` printed {:?}: {error}",
                self.tool.argv.join(" "),
                printed.trim()
            )
        })
    }

    fn set_weights(&mut self, stable: u32, canary: u32) -> Result<(), String> {
        self.tool
            .run(&["weights".to_owned(), stable.to_string(), canary.to_string()])
            .map(drop)
    }

    fn admit_canary(&mut self) -> Result<(), String> {
        self.tool.run(&["admit".to_owned()]).map(drop)
    }

    fn drain_stable(&mut self) -> Result<(), String> {
        self.tool.run(&["drain".to_owned()]).map(drop)
    }
}

fn parse(printed: &str) -> Result<Pools, String> {
    let mut found = [None, None];
    for line in printed.lines().filter(|line| !line.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [pool, weight, requests, errors, state] = words[..] else {
            return Err(format!(
                "`{line}` is not `POOL WEIGHT REQUESTS ERRORS up|down`"
            ));
        };
        let index = match pool {
            "stable" => 0,
            "canary" => 1,
            other => return Err(format!("`{other}` is not `stable` or `canary`")),
        };
        let number = |text: &str, what: &str| {
            text.parse::<u64>()
                .map_err(|_| format!("`{text}` is not a {what}"))
        };
        let up = match state {
            "up" => true,
            "down" => false,
            other => return Err(format!("`{other}` is not `up` or `down`")),
        };
        let counts = Counts {
            requests: number(requests, "request count")?,
            errors: number(errors, "error count")?,
        };
        if counts.errors > counts.requests {
            return Err(format!("{pool} has more errors than requests"));
        }
        found[index] = Some(Pool {
            counts,
            weight: u32::try_from(number(weight, "weight")?)
                .map_err(|_| format!("`{weight}` is not a weight"))?,
            up,
            latency: None,
        });
    }
    match found {
        [Some(stable), Some(canary)] => Ok(Pools { stable, canary }),
        [None, _] => Err("no `stable` line".to_owned()),
        [_, None] => Err("no `canary` line".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_lines() {
        let pools = parse("canary 10 40 2 up\nstable 90 400 1 up\n").expect("parse");
        assert_eq!(pools.canary.weight, 10);
        assert_eq!(
            pools.stable.counts,
            Counts {
                requests: 400,
                errors: 1
            }
        );
        for (bad, why) in [
            ("stable 100 0 0 up\n", "no `canary` line"),
            (
                "stable 100 0 0 up\ncanary 0 0 0 maybe\n",
                "not `up` or `down`",
            ),
            ("stable 100 0 0\n", "is not `POOL WEIGHT"),
            ("blue 100 0 0 up\n", "`blue` is not"),
            ("stable 100 1 2 up\ncanary 0 0 0 up\n", "more errors"),
            ("stable -1 0 0 up\ncanary 0 0 0 up\n", "not a weight"),
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
