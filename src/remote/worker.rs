//! `gantry worker`: a bot of the Remote Workers API. It keeps one bot session with the
//! server, long-polls `UpdateBotSession` for leases while it has room, runs each lease's
//! action (see `job.rs`), reports it completed, and sends heartbeats while it is full. A lease
//! the server drops is cancelled; a lost session is made anew (the server has requeued its
//! work); on SIGINT or SIGTERM running leases are handed back (`UNAVAILABLE`, which requeues).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bazel_remote_apis::google::rpc::Status;
use tokio::sync::mpsc;

use super::bots::{
    BotSession, BotStatus, BotsClient, CreateBotSessionRequest, Device, Lease, LeaseState,
    Property, UpdateBotSessionRequest, Worker,
};
use super::cas::{self, Cas};
use super::job::{Outcome, Runner};

/// How long a call may wait for work: the server long-polls for up to 80 % of this or of
/// its keepalive, whichever is shorter.
const LONG_POLL: Duration = Duration::from_secs(60);
/// A call that should be answered at once.
const QUICK: Duration = Duration::from_secs(20);
/// Creating a session with a deadline this short is answered at once (the server does not
/// long-poll under 3 s), so the worker says it is connected when it is.
const CREATE: Duration = Duration::from_millis(3500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long stopping waits for running actions to end.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub struct Options {
    /// `grpc://HOST:PORT`.
    pub server: String,
    pub instance: String,
    pub concurrency: usize,
    /// The bot's id (unique among the server's workers).
    pub name: String,
    /// Where the stash, scratch slots and the sandbox live.
    pub folder: PathBuf,
}

/// What a worker reports as it goes.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Connected {
        session: String,
        capacity: usize,
    },
    Started {
        lease: String,
    },
    Completed {
        lease: String,
        outcome: String,
    },
    /// The server took a lease back; it was stopped.
    Dropped {
        lease: String,
    },
    /// The server cannot be reached or refused a call; the worker retries.
    Retrying {
        error: String,
    },
    /// The session was lost; a new one is made.
    SessionLost {
        error: String,
    },
    Stopping {
        handed_back: usize,
    },
}

/// Serves leases until SIGINT or SIGTERM. An error is returned only when the worker cannot
/// start, or the server refuses the session itself (a wrong instance name, say).
pub fn serve(options: &Options, report: &(dyn Fn(&Event) + Sync)) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("gantry-worker")
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the worker: {error}"))?;
    runtime.block_on(async {
        let channel = cas::channel(&options.server)?;
        let runner = Runner::new(
            Cas::new(channel.clone(), &options.instance),
            &options.folder,
            &options.name,
        )?;
        let mut bot = Bot {
            client: BotsClient::new(channel),
            runner: Arc::new(runner),
            options,
            report,
            jobs: BTreeMap::new(),
            session: None,
        };
        bot.serve().await
    })
}

enum Job {
    Running(Arc<AtomicBool>),
    /// Finished; to report with the next update.
    Done(Lease),
}

struct Bot<'a> {
    client: BotsClient,
    runner: Arc<Runner>,
    options: &'a Options,
    report: &'a (dyn Fn(&Event) + Sync),
    jobs: BTreeMap<String, Job>,
    session: Option<BotSession>,
}

type Finished = (String, Outcome);

impl Bot<'_> {
    async fn serve(&mut self) -> Result<(), String> {
        let (done_sender, mut done) = mpsc::unbounded_channel::<Finished>();
        let mut stop = std::pin::pin!(stop_signal());
        let mut backoff = Duration::from_millis(250);
        loop {
            while let Ok((id, outcome)) = done.try_recv() {
                self.settle(id, outcome);
            }
            let has_room = self.running() < self.options.concurrency;
            let reporting: Vec<String> = (self.jobs.iter())
                .filter(|(_, job)| matches!(job, Job::Done(_)))
                .map(|(id, _)| id.clone())
                .collect();
            let call = self.call(has_room);
            // A long poll is given up when an action finishes, to report it at once: the
            // server syncs a bot's leases before it waits, never after a cancelled wait.
            let interruptible = has_room && reporting.is_empty() && self.session.is_some();
            let answer = tokio::select! {
                biased;
                () = &mut stop => return self.stop(&mut done).await,
                Some((id, outcome)) = done.recv(), if interruptible => {
                    self.settle(id, outcome);
                    continue;
                }
                answer = call => answer,
            };
            match answer {
                Ok(session) => {
                    backoff = Duration::from_millis(250);
                    for id in &reporting {
                        self.jobs.remove(id);
                    }
                    self.reconcile(session, &done_sender);
                }
                Err(status) => {
                    let error = cas::failed("talking to the server", &status);
                    if self.session.is_none() && !retryable(status.code()) {
                        return Err(format!("the server refused the worker's session: {error}"));
                    }
                    if matches!(
                        status.code(),
                        tonic::Code::InvalidArgument
                            | tonic::Code::NotFound
                            | tonic::Code::DataLoss
                            | tonic::Code::FailedPrecondition
                    ) {
                        (self.report)(&Event::SessionLost { error });
                        self.abandon();
                    } else {
                        (self.report)(&Event::Retrying { error });
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    continue;
                }
            }
            if self.running() >= self.options.concurrency && !self.has_done() {
                // Full: the server answers at once, so heartbeats are paced here.
                let pause = self.heartbeat();
                tokio::select! {
                    biased;
                    () = &mut stop => return self.stop(&mut done).await,
                    Some((id, outcome)) = done.recv() => self.settle(id, outcome),
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }

    /// The next call: create a session, or update it with every lease's state.
    fn call(
        &self,
        has_room: bool,
    ) -> impl Future<Output = Result<BotSession, tonic::Status>> + use<> {
        let wait = if has_room { LONG_POLL } else { QUICK };
        let leases: Vec<Lease> = (self.jobs.iter())
            .map(|(id, job)| match job {
                Job::Running(_) => Lease {
                    id: id.clone(),
                    state: LeaseState::Active as i32,
                    ..Lease::default()
                },
                Job::Done(lease) => lease.clone(),
            })
            .collect();
        let session = self.session.clone();
        let fresh = self.fresh_session();
        let instance = self.options.instance.clone();
        let mut client = self.client.clone();
        async move {
            match session {
                None => {
                    client
                        .create(
                            CreateBotSessionRequest {
                                parent: instance,
                                bot_session: Some(fresh),
                            },
                            CREATE,
                        )
                        .await
                }
                Some(mut session) => {
                    session.leases = leases;
                    client
                        .update(
                            UpdateBotSessionRequest {
                                name: session.name.clone(),
                                bot_session: Some(session),
                            },
                            wait,
                        )
                        .await
                }
            }
        }
    }

    fn fresh_session(&self) -> BotSession {
        let property = |key: &str, value: &str| Property {
            key: key.to_owned(),
            value: value.to_owned(),
        };
        BotSession {
            bot_id: self.options.name.clone(),
            status: BotStatus::Ok as i32,
            worker: Some(Worker {
                devices: vec![Device {
                    handle: "gantry-sandbox".to_owned(),
                    properties: vec![
                        property("OSFamily", std::env::consts::OS),
                        property("ISA", &isa()),
                    ],
                }],
                properties: Vec::new(),
                configs: vec![property("capacity", &self.options.concurrency.to_string())],
            }),
            ..BotSession::default()
        }
    }

    /// Takes the server's view: starts the leases that are new, stops the ones it dropped.
    fn reconcile(&mut self, session: BotSession, done: &mpsc::UnboundedSender<Finished>) {
        if self.session.is_none() {
            (self.report)(&Event::Connected {
                session: session.name.clone(),
                capacity: self.options.concurrency,
            });
        }
        let offered: BTreeMap<&str, &Lease> = (session.leases.iter())
            .filter(|lease| {
                lease.state == LeaseState::Active as i32
                    || lease.state == LeaseState::Pending as i32
            })
            .map(|lease| (lease.id.as_str(), lease))
            .collect();
        let dropped: Vec<String> = (self.jobs.iter())
            .filter(|(id, job)| {
                matches!(job, Job::Running(_)) && !offered.contains_key(id.as_str())
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in dropped {
            if let Some(Job::Running(cancel)) = self.jobs.remove(&id) {
                cancel.store(true, Ordering::Relaxed);
            }
            (self.report)(&Event::Dropped { lease: id });
        }
        for (id, lease) in offered {
            if self.jobs.contains_key(id) {
                continue;
            }
            let cancel = Arc::new(AtomicBool::new(false));
            self.jobs
                .insert(id.to_owned(), Job::Running(Arc::clone(&cancel)));
            (self.report)(&Event::Started {
                lease: id.to_owned(),
            });
            let runner = Arc::clone(&self.runner);
            let done = done.clone();
            let id = id.to_owned();
            let payload = lease.payload.clone();
            tokio::spawn(async move {
                let outcome = runner.run(id.clone(), payload, cancel).await;
                let _ = done.send((id, outcome));
            });
        }
        let mut session = session;
        session.leases.clear();
        self.session = Some(session);
    }

    /// Records a finished action, unless its lease was dropped meanwhile.
    fn settle(&mut self, id: String, outcome: Outcome) {
        if !matches!(self.jobs.get(&id), Some(Job::Running(_))) {
            return;
        }
        match outcome {
            Outcome::Completed { lease, summary } => {
                (self.report)(&Event::Completed {
                    lease: id.clone(),
                    outcome: summary,
                });
                self.jobs.insert(id, Job::Done(*lease));
            }
            Outcome::Dropped => {
                self.jobs.remove(&id);
            }
        }
    }

    /// Forgets the session and its leases (the server requeued them) and stops their actions.
    fn abandon(&mut self) {
        for job in self.jobs.values() {
            if let Job::Running(cancel) = job {
                cancel.store(true, Ordering::Relaxed);
            }
        }
        self.jobs.clear();
        self.session = None;
    }

    fn running(&self) -> usize {
        (self.jobs.values())
            .filter(|job| matches!(job, Job::Running(_)))
            .count()
    }

    fn has_done(&self) -> bool {
        self.jobs.values().any(|job| matches!(job, Job::Done(_)))
    }

    /// A third of the time the server gives the session before it counts the bot as lost.
    fn heartbeat(&self) -> Duration {
        let expires = (self.session.as_ref())
            .and_then(|session| session.expire_time.as_ref())
            .and_then(|time| u64::try_from(time.seconds).ok())
            .map(|seconds| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds));
        let left = expires
            .and_then(|expires| expires.duration_since(SystemTime::now()).ok())
            .unwrap_or(Duration::from_secs(3));
        (left / 3).clamp(Duration::from_millis(500), Duration::from_secs(20))
    }

    /// Stops every running action and hands its lease back so that another worker runs it;
    /// reports what finished.
    async fn stop(&mut self, done: &mut mpsc::UnboundedReceiver<Finished>) -> Result<(), String> {
        let running: Vec<String> = (self.jobs.iter())
            .filter(|(_, job)| matches!(job, Job::Running(_)))
            .map(|(id, _)| id.clone())
            .collect();
        for job in self.jobs.values() {
            if let Job::Running(cancel) = job {
                cancel.store(true, Ordering::Relaxed);
            }
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        while self.running() > 0 {
            match tokio::time::timeout_at(deadline, done.recv()).await {
                Ok(Some((id, outcome))) => self.settle(id, outcome),
                _ => break,
            }
        }
        let stopped: Vec<String> = (running.into_iter())
            .filter(|id| !self.jobs.contains_key(id))
            .collect();
        (self.report)(&Event::Stopping {
            handed_back: stopped.len(),
        });
        for id in stopped {
            self.jobs.insert(
                id.clone(),
                Job::Done(Lease {
                    id,
                    state: LeaseState::Completed as i32,
                    status: Some(Status {
                        code: tonic::Code::Unavailable as i32,
                        message: "the worker is stopping".to_owned(),
                        details: Vec::new(),
                    }),
                    ..Lease::default()
                }),
            );
        }
        if self.session.is_some() {
            if let Some(session) = &mut self.session {
                session.status = BotStatus::BotTerminating as i32;
            }
            let _ = self.call(false).await;
        }
        Ok(())
    }
}

fn retryable(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Unknown
            | tonic::Code::ResourceExhausted
    )
}

/// The platform's instruction set as REAPI platforms name it.
fn isa() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "x86-64".to_owned(),
        other => other.to_owned(),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}
