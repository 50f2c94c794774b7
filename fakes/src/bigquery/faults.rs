//! Fault injection: which route a request belongs to, and the queue of "fail the next N requests" plans the
//! responders consult. It does not drop connections or delay responses; mount a higher-priority wiremock mock
//! on `FakeBigQuery::server()` for that.

use super::errors::{ApiError, default_message};

/// A family of BigQuery calls, as fault plans and the request log name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    CreateDataset,
    GetDataset,
    ListDatasets,
    DeleteDataset,
    CreateTable,
    GetTable,
    ListTables,
    /// `tables.patch` and `tables.update`.
    PatchTable,
    DeleteTable,
    /// Multipart and resumable uploads (the start and every chunk) and metadata `jobs.insert`.
    InsertJob,
    GetJob,
    /// `jobs.list` and `jobs.cancel`.
    ListJobs,
    ListTableData,
    InsertAll,
    /// `jobs.query` and `jobs.getQueryResults`.
    Query,
    /// Every request, known route or not.
    Any,
}

/// When an injected failure strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Instead of handling the request: nothing changes on the server.
    Before,
    /// After the request took effect: the client sees an error for something that happened (a lost response).
    After,
}

/// One plan: answer the next `remaining` requests of `route` with `status` and a `reason` error body.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub route: Route,
    pub phase: Phase,
    pub remaining: u32,
    pub status: u16,
    pub reason: String,
}

/// Pending fault plans, consumed first come, first served.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    plans: Vec<Fault>,
}

impl Faults {
    pub fn push(&mut self, plan: Fault) {
        if plan.remaining > 0 {
            self.plans.push(plan);
        }
    }

    /// The error to answer with, if a plan covers this request; consumes one use of that plan.
    pub fn take(&mut self, route: Option<Route>, phase: Phase) -> Option<ApiError> {
        let index = self
            .plans
            .iter()
            .position(|plan| plan.phase == phase && (plan.route == Route::Any || Some(plan.route) == route))?;
        let plan = &mut self.plans[index];
        plan.remaining -= 1;
        let error = ApiError::with_status(plan.status, &plan.reason, default_message(&plan.reason));
        if plan.remaining == 0 {
            self.plans.remove(index);
        }
        Some(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_used_exactly_as_many_times_as_asked() {
        let mut faults = Faults::default();
        faults.push(Fault {
            route: Route::GetJob,
            phase: Phase::Before,
            remaining: 2,
            status: 503,
            reason: "backendError".into(),
        });
        assert_eq!(faults.take(Some(Route::GetTable), Phase::Before), None);
        assert_eq!(faults.take(Some(Route::GetJob), Phase::After), None);
        assert_eq!(faults.take(Some(Route::GetJob), Phase::Before).map(|e| e.status), Some(503));
        assert!(faults.take(Some(Route::GetJob), Phase::Before).is_some());
        assert_eq!(faults.take(Some(Route::GetJob), Phase::Before), None);
    }

    #[test]
    fn any_matches_unknown_routes_too() {
        let mut faults = Faults::default();
        faults.push(Fault {
            route: Route::Any,
            phase: Phase::Before,
            remaining: 1,
            status: 500,
            reason: "internalError".into(),
        });
        assert!(faults.take(None, Phase::Before).is_some());
    }
}
