//! Staff actions that run longer than a request (signing out every session a search matches):
//! started by one request, run on their own task, and watched by the next ones through their id.
//!
//! Jobs live in this node's memory: a restart forgets them (what they ended stays ended, and the
//! audit log says how far each got). A finished job is forgotten an hour after it ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a finished job can still be looked at.
const KEPT_AFTER_END: Duration = Duration::from_secs(3600);

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Still working.
    Running,
    /// Done.
    Finished,
    /// Stopped by an error (what ended before it stays ended).
    Failed(String),
}

/// One job: what it does, how far it got.
#[derive(Debug)]
pub struct Job {
    /// What it does, in words ("Sign out sessions matching country SE").
    pub title: String,
    /// How many it expects to do (the preview's count).
    pub total: u64,
    started: Instant,
    done: AtomicU64,
    state: Mutex<(JobState, Option<Instant>)>,
}

impl Job {
    /// How many are done so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Records progress.
    pub fn advance(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
    }

    /// Where it is.
    pub fn state(&self) -> JobState {
        self.lock().0.clone()
    }

    /// Marks it ended, well or not.
    pub fn end(&self, state: JobState) {
        *self.lock() = (state, Some(Instant::now()));
    }

    fn ended_at(&self) -> Option<Instant> {
        self.lock().1
    }

    /// How long it ran, or has been running.
    pub fn elapsed(&self) -> Duration {
        self.ended_at()
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(self.started)
    }

    fn lock(&self) -> MutexGuard<'_, (JobState, Option<Instant>)> {
        // Nothing panics while holding it; a poisoned state is still a state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The jobs of this node, by id (22 random base64url characters, as a session's public id).
#[derive(Debug, Clone, Default)]
pub struct Jobs {
    jobs: Arc<Mutex<HashMap<String, Arc<Job>>>>,
}

impl Jobs {
    /// Registers a new running job; answers its id and the job to report progress to.
    pub fn start(&self, title: String, total: u64) -> (String, Arc<Job>) {
        let id = console_sessions::sessions::PublicId::generate().to_string();
        let job = Arc::new(Job {
            title,
            total,
            started: Instant::now(),
            done: AtomicU64::new(0),
            state: Mutex::new((JobState::Running, None)),
        });
        let mut jobs = self.lock();
        jobs.retain(|_, job| {
            job.ended_at()
                .is_none_or(|ended| ended.elapsed() < KEPT_AFTER_END)
        });
        jobs.insert(id.clone(), job.clone());
        (id, job)
    }

    /// The job with this id, if this node has it.
    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.lock().get(id).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}
