//! HAProxy through its runtime API (the `stats socket ... level admin` Unix socket): weights
//! with `set weight`, pool states with `set server ... state`, counts from `show stat`.
//! One connection per command, as socat would: HAProxy closes it after answering.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use crate::rollout::sprt::Counts;
use crate::rollout::traffic::{Pool, Pools, Traffic};

pub struct Haproxy {
    pub socket: PathBuf,
    pub backend: String,
    pub stable: String,
    pub canary: String,
}

const TIMEOUT: Duration = Duration::from_secs(5);

impl Haproxy {
    /// Sends one command and returns HAProxy's answer.
    fn command(&self, command: &str) -> Result<String, String> {
        let failed = |error: std::io::Error| {
            format!(
                "HAProxy's runtime API at `{}`: {error}",
                self.socket.display()
            )
        };
        let mut stream = UnixStream::connect(&self.socket).map_err(failed)?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(failed)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(failed)?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(failed)?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).map_err(failed)?;
        Ok(answer)
    }

    /// A command that answers nothing when it worked, and a sentence when it did not.
    fn act(&self, command: &str) -> Result<(), String> {
        let answer = self.command(command)?;
        let answer = answer.trim();
        if answer.is_empty() {
            Ok(())
        } else {
            Err(format!("HAProxy refused `{command}`: {answer}"))
        }
    }

    fn server(&self, name: &str) -> String {
        format!("{}/{name}", self.backend)
    }
}

impl Traffic for Haproxy {
    fn describe(&self) -> String {
        format!(
            "haproxy {}/{{{},{}}} via {}",
            self.backend,
            self.stable,
            self.canary,
            self.socket.display()
        )
    }

    fn read(&mut self) -> Result<Pools, String> {
        let table = self.command("show stat")?;
        let rows = parse_stat(&table)?;
        let find = |server: &str| {
            rows.iter()
                .find(|row| row.proxy == self.backend && row.server == server)
                .map(|row| row.pool)
                .ok_or_else(|| {
                    format!(
                        "HAProxy has no server `{}/{server}` (`show stat` lists {})",
                        self.backend,
                        list(&rows)
                    )
                })
        };
        Ok(Pools {
            stable: find(&self.stable)?,
            canary: find(&self.canary)?,
        })
    }

    fn set_weights(&mut self, stable: u32, canary: u32) -> Result<(), String> {
        // The canary first when it gains: the pool never has less than full weight between
        // the two commands.
        let commands = [
            format!("set weight {} {stable}", self.server(&self.stable)),
            format!("set weight {} {canary}", self.server(&self.canary)),
        ];
        let order: [usize; 2] = if canary > 0 { [1, 0] } else { [0, 1] };
        for index in order {
            self.act(&commands[index])?;
        }
        Ok(())
    }

    fn admit_canary(&mut self) -> Result<(), String> {
        self.act(&format!(
            "set server {} state ready",
            self.server(&self.canary)
        ))
    }

    fn drain_stable(&mut self) -> Result<(), String> {
        self.act(&format!(
            "set server {} state drain",
            self.server(&self.stable)
        ))
    }
}

fn list(rows: &[Row]) -> String {
    let names: Vec<String> = (rows.iter())
        .filter(|row| row.server != "FRONTEND" && row.server != "BACKEND")
        .map(|row| format!("`{}/{}`", row.proxy, row.server))
        .collect();
    if names.is_empty() {
        "no servers".to_owned()
    } else {
        names.join(", ")
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Row {
    proxy: String,
    server: String,
    pool: Pool,
}

/// `show stat`'s CSV: a `# pxname,svname,...` header naming the columns, a row per proxy and
/// server. Columns are found by name, since versions add them.
fn parse_stat(table: &str) -> Result<Vec<Row>, String> {
    let mut lines = table.lines();
    let header = lines
        .next()
        .and_then(|line| line.strip_prefix("# "))
        .ok_or_else(|| format!("`show stat` answered {:?}, not its CSV", first_line(table)))?;
    let columns: Vec<&str> = header.split(',').collect();
    let column = |name: &str| {
        columns
            .iter()
            .position(|column| *column == name)
            .ok_or_else(|| format!("`show stat` has no `{name}` column"))
    };
    let [proxy, server, status, weight] = ["pxname", "svname", "status", "weight"].map(&column);
    let (proxy, server, status, weight) = (proxy?, server?, status?, weight?);
    let responses = [
        "hrsp_1xx",
        "hrsp_2xx",
        "hrsp_3xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "hrsp_other",
    ]
    .map(&column);
    let responses: Vec<usize> = responses.into_iter().collect::<Result<_, _>>()?;
    let [server_errors, connection_errors, response_errors] =
        ["hrsp_5xx", "econ", "eresp"].map(column);
    let failures = [server_errors?, connection_errors?, response_errors?];
    let mut rows = Vec::new();
    for line in lines.filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let field = |index: usize| fields.get(index).copied().unwrap_or("");
        let number = |index: usize| field(index).parse::<u64>().unwrap_or(0);
        let sum = |indices: &[usize]| indices.iter().map(|&index| number(index)).sum::<u64>();
        let answered = sum(&responses);
        let failed_before_answer = number(failures[1]) + number(failures[2]);
        rows.push(Row {
            proxy: field(proxy).to_owned(),
            server: field(server).to_owned(),
            pool: Pool {
                counts: Counts {
                    requests: answered + failed_before_answer,
                    errors: sum(&failures),
                },
                weight: u32::try_from(number(weight)).unwrap_or(u32::MAX),
                up: field(status).starts_with("UP") || field(status) == "no check",
                latency: None,
            },
        });
    }
    Ok(rows)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `show stat` of HAProxy 2.6.12 (Debian 12), trimmed to its first 50 columns.
    const STAT: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt
web,FRONTEND,,,0,1,4096,1,82,127,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,1,0,1,,,,0,1,0,0,0,0,,1,1,1,
app,blue,0,0,0,1,,1,82,127,,0,,2,1,0,0,UP,90,1,0,0,0,1,0,,1,3,1,,1,,2,1,,1,L4OK,,0,0,950,0,3,40,0,,,,1,0
app,green,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,0,1,0,1,1,1,1,,1,3,2,,0,,2,0,,0,L4CON,,0,0,0,0,0,0,0,,,,0,0
app,BACKEND,0,0,0,1,410,1,82,127,0,0,,0,0,0,0,UP,100,1,0,,0,1,0,,1,3,0,,1,,1,1,,1,,,,0,1,0,0,0,0,,,,1,0
";

    #[test]
    fn show_stat_is_read_by_column_name() {
        let rows = parse_stat(STAT).expect("parse");
        let blue = rows.iter().find(|row| row.server == "blue").expect("blue");
        // 993 answered and 3 that failed before an answer; 40 5xx and those 3 are errors.
        assert_eq!(
            blue.pool,
            Pool {
                counts: Counts {
                    requests: 996,
                    errors: 43
                },
                weight: 90,
                up: true,
                latency: None,
            }
        );
        let green = rows
            .iter()
            .find(|row| row.server == "green")
            .expect("green");
        assert!(!green.pool.up);
        assert_eq!(list(&rows), "`app/blue`, `app/green`");
    }

    #[test]
    fn an_answer_that_is_not_the_table_is_an_error() {
        assert!(parse_stat("Unknown command\n").is_err());
        assert!(
            parse_stat("# pxname,svname\n")
                .unwrap_err()
                .contains("`status`")
        );
    }
}
