//! Conflict attribution: which variable stopped an attempt, and why (the profiler's input).

use super::{AbortRecord, Involved, ReadEntry, StmError, Transaction, TxState};
use crate::internal::var::{VarCore, version_of};
use crate::stats::AbortCause;
use crate::sync::atomic::Ordering;

impl Transaction {
    pub(super) fn conflict(&self, st: &mut TxState, cause: AbortCause, var: &VarCore) -> StmError {
        if st.abort.is_none() {
            let var = self.involved(st, var);
            st.abort = Some(AbortRecord {
                cause,
                var,
                also: Vec::new(),
            });
        }
        StmError::CONFLICT
    }

    pub(super) fn involved(&self, st: &TxState, var: &VarCore) -> Involved {
        let (written_by, also_written) = if self.profiling {
            // A scan, not `find`: a failed commit of a large set has dropped its index.
            let addr = var.addr();
            let written = st.writes.entries.iter().any(|e| e.var as usize == addr);
            (var.last_writer(), written)
        } else {
            (None, false)
        };
        Involved {
            addr: var.addr(),
            origin: var.origin(),
            written_by,
            also_written,
        }
    }

    /// Profiler on: after a failed validation, charges the conflict also to every other read
    /// variable that changed, and to `trigger` (the variable whose newer version started the
    /// validation).
    #[cold]
    pub(super) fn involve_other_changes(&self, st: &mut TxState, trigger: Option<&VarCore>) {
        let Some(primary) = st.abort.as_ref().map(|a| a.var.addr) else {
            return;
        };
        let mut seen = vec![primary];
        let mut also = Vec::new();
        let changed = st.reads.iter().filter(|r| {
            let word = r.var().lock.load(Ordering::Acquire);
            version_of(word) != r.version
        });
        for var in trigger.into_iter().chain(changed.map(ReadEntry::var)) {
            if !seen.contains(&var.addr()) {
                seen.push(var.addr());
                also.push(self.involved(st, var));
            }
        }
        if let Some(a) = st.abort.as_mut() {
            a.also = also;
        }
    }

    pub(super) fn abort_info(&self) -> Option<AbortRecord> {
        self.state().abort.clone()
    }
}
