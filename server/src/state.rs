//! The server's state, twice: on commute's collections (one transaction per request), and in
//! one `std::sync::Mutex` (a global lock, the baseline).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use commute::{TCounter, TMap, TQueue, atomically};

/// Where the state lives: `--state commute|mutex`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// commute's `TCounter`, `TMap` and `TQueue`, updated in transactions.
    Commute,
    /// One `Mutex` around a `HashMap` and two `VecDeque`s.
    Mutex,
}

impl Mode {
    /// The flag's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Commute => "commute",
            Mode::Mutex => "mutex",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "commute" => Ok(Mode::Commute),
            "mutex" => Ok(Mode::Mutex),
            other => Err(format!("unknown state {other:?}: commute or mutex")),
        }
    }
}

/// One user's session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// Requests of this user.
    pub hits: u64,
    /// The path of the user's last request.
    pub last_path: String,
}

/// One line of the request log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Who.
    pub user: String,
    /// What.
    pub path: String,
    /// The user's hit count after this request.
    pub hits: u64,
}

/// A consistent snapshot for `GET /stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests counted by `/hit`.
    pub requests: u64,
    /// Distinct users seen.
    pub sessions: u64,
    /// Records in the request log.
    pub log_len: u64,
    /// The sum of every session's hit count.
    pub hits_sum: u64,
    /// Jobs queued and not taken.
    pub jobs: u64,
    /// `GET /next-job` requests in progress now: waiting for a job, or still receiving a body
    /// they declared (which the server reads before it waits, see [`crate::http`]).
    pub waiting: u64,
}

impl Stats {
    /// As JSON (no dependency for six numbers).
    pub fn to_json(&self, mode: Mode) -> String {
        format!(
            "{{\"state\":\"{}\",\"requests\":{},\"sessions\":{},\"log_len\":{},\"hits_sum\":{},\"jobs\":{},\"waiting\":{}}}",
            mode.name(),
            self.requests,
            self.sessions,
            self.log_len,
            self.hits_sum,
            self.jobs,
            self.waiting
        )
    }

    /// Parses what [`to_json`](Stats::to_json) wrote (for the client side).
    pub fn from_json(json: &str) -> Option<Stats> {
        let field = |name: &str| -> Option<u64> {
            let key = format!("\"{name}\":");
            let start = json.find(&key)? + key.len();
            let digits: String = json[start..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        };
        Some(Stats {
            requests: field("requests")?,
            sessions: field("sessions")?,
            log_len: field("log_len")?,
            hits_sum: field("hits_sum")?,
            jobs: field("jobs")?,
            waiting: field("waiting")?,
        })
    }
}

/// The state of either mode.
#[derive(Debug)]
pub enum AppState {
    /// On commute.
    Commute(CommuteState),
    /// Behind one mutex.
    Mutex(MutexState),
}

impl AppState {
    /// A fresh state of the given mode.
    pub fn new(mode: Mode) -> AppState {
        match mode {
            Mode::Commute => AppState::Commute(CommuteState::default()),
            Mode::Mutex => AppState::Mutex(MutexState::default()),
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        match self {
            AppState::Commute(_) => Mode::Commute,
            AppState::Mutex(_) => Mode::Mutex,
        }
    }

    /// `/hit/{user}`: counts the request, updates the session, logs; returns the user's hits.
    pub fn hit(&self, user: &str, path: &str) -> u64 {
        match self {
            AppState::Commute(s) => s.hit(user, path),
            AppState::Mutex(s) => s.hit(user, path),
        }
    }

    /// `/stats`.
    pub fn stats(&self) -> Stats {
        match self {
            AppState::Commute(s) => s.stats(),
            AppState::Mutex(s) => s.stats(),
        }
    }

    /// `POST /job`.
    pub fn push_job(&self, job: String) {
        match self {
            AppState::Commute(s) => s.jobs.atomic().push(job),
            AppState::Mutex(s) => s.push_job(job),
        }
    }

    /// `/next-job`: waits for a job and takes it, counted in [`Stats::waiting`] meanwhile.
    ///
    /// Cancel-safe: dropping the future before it completes takes no job (and uncounts it).
    pub async fn next_job(&self) -> String {
        let _counted = self.count_waiting();
        self.take_job().await
    }

    /// Counts a `/next-job` request in [`Stats::waiting`] for as long as the guard lives.
    pub(crate) fn count_waiting(&self) -> Waiting<'_> {
        Waiting::new(match self {
            AppState::Commute(s) => &s.waiting,
            AppState::Mutex(s) => &s.waiting,
        })
    }

    /// Waits for a job and takes it, uncounted.
    ///
    /// Cancel-safe: the pop happens within the poll that returns the job (on commute,
    /// `pop_wait_async`'s commit; behind the mutex, a `pop_front` under the lock), so a future
    /// dropped before it completes has taken nothing; a `notify_one` that a dropped waiter
    /// received is passed on to the next waiter by tokio's `Notified`.
    pub(crate) async fn take_job(&self) -> String {
        match self {
            AppState::Commute(s) => s.jobs.atomic().pop_wait_async().await,
            AppState::Mutex(s) => s.next_job().await,
        }
    }
}

/// Counts a waiting `/next-job` request for as long as it lives (cancellation included).
pub(crate) struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The state on commute's collections.
#[derive(Debug)]
pub struct CommuteState {
    requests: TCounter,
    sessions: TMap<String, Session>,
    log: TQueue<LogRecord>,
    jobs: TQueue<String>,
    waiting: AtomicUsize,
}

impl Default for CommuteState {
    fn default() -> Self {
        CommuteState {
            requests: TCounter::new().with_label("requests"),
            sessions: TMap::with_capacity(1024).with_label("sessions"),
            log: TQueue::new().with_label("log"),
            jobs: TQueue::new().with_label("jobs"),
            waiting: AtomicUsize::new(0),
        }
    }
}

impl CommuteState {
    /// The `/hit` transaction: counter, session and log change together or not at all.
    pub fn hit(&self, user: &str, path: &str) -> u64 {
        atomically(|tx| {
            self.requests.incr(tx);
            let hits = self.sessions.alter(tx, user.to_owned(), |old| {
                let mut session = old.cloned().unwrap_or_default();
                session.hits += 1;
                session.last_path = path.to_owned();
                let hits = session.hits;
                (commute::Change::Set(session), hits)
            })?;
            self.log.push(
                tx,
                LogRecord {
                    user: user.to_owned(),
                    path: path.to_owned(),
                    hits,
                },
            );
            Ok(hits)
        })
    }

    /// One transaction reads everything: a snapshot no request is halfway through.
    pub fn stats(&self) -> Stats {
        let mut stats = atomically(|tx| {
            let mut hits_sum = 0;
            self.sessions.for_each(tx, |_, s| hits_sum += s.hits)?;
            Ok(Stats {
                requests: self.requests.get(tx)? as u64,
                sessions: self.sessions.len(tx)? as u64,
                log_len: self.log.len(tx)? as u64,
                hits_sum,
                jobs: self.jobs.len(tx)? as u64,
                waiting: 0,
            })
        });
        stats.waiting = self.waiting.load(Ordering::SeqCst) as u64;
        stats
    }
}

/// The same state behind one mutex (the baseline), with a `Notify` for waiting job takers.
#[derive(Debug, Default)]
pub struct MutexState {
    inner: Mutex<Inner>,
    job_posted: tokio::sync::Notify,
    waiting: AtomicUsize,
}

#[derive(Debug, Default)]
struct Inner {
    requests: u64,
    sessions: HashMap<String, Session>,
    log: VecDeque<LogRecord>,
    jobs: VecDeque<String>,
}

impl MutexState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hit(&self, user: &str, path: &str) -> u64 {
        let mut inner = self.lock();
        inner.requests += 1;
        let session = inner.sessions.entry(user.to_owned()).or_default();
        session.hits += 1;
        session.last_path = path.to_owned();
        let hits = session.hits;
        inner.log.push_back(LogRecord {
            user: user.to_owned(),
            path: path.to_owned(),
            hits,
        });
        hits
    }

    fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            requests: inner.requests,
            sessions: inner.sessions.len() as u64,
            log_len: inner.log.len() as u64,
            hits_sum: inner.sessions.values().map(|s| s.hits).sum(),
            jobs: inner.jobs.len() as u64,
            waiting: self.waiting.load(Ordering::SeqCst) as u64,
        }
    }

    fn push_job(&self, job: String) {
        self.lock().jobs.push_back(job);
        self.job_posted.notify_one();
    }

    async fn next_job(&self) -> String {
        loop {
            let posted = self.job_posted.notified();
            let mut posted = std::pin::pin!(posted);
            // Registered before the check: a job pushed after it notifies this waiter.
            posted.as_mut().enable();
            if let Some(job) = self.lock().jobs.pop_front() {
                return job;
            }
            posted.await;
        }
    }
}
