//! socketio-pubsub: waiting for the dialect's spec.
use crate::report::CaseError;
use crate::spec::Spec;
use crate::{Config, Report};

pub async fn run(_cfg: &Config, _spec: &Spec, report: &mut Report) {
    report.record(
        "(all)",
        "scenario",
        Err(CaseError::Skip("not written yet".into())),
    );
}
