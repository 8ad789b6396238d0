//! The outcome of a run: one row per checked case, printed as a table.
//!
//! A case belongs to an *operation* (the client message it exercises, by its wire
//! name) and passes only when every frame it waited for arrived, matched the spec's
//! schema of the expected message, said what the case expected, and no unexpected
//! frame followed. A case is *skipped* when an earlier case it builds on failed (its
//! chat was never created, say) or when the run lacks what it needs (a third token);
//! skips never make the run fail, failures always do.
//!
//! At the legacy level (see [`crate::spec::Level`]) a row also lists its
//! *departures*: where the server's frames or behaviour differ from the gateway's
//! spec in what the seed never promised. A departure never fails a case. A case the
//! document marks as the gateway's own promise (`x-conformance.gateway-cases`) that
//! fails at the legacy level is a skip carrying its failure as a departure.

use crate::spec::{Departures, GatewayCase, Level};
use std::fmt::Write as _;

/// Why a case did not pass.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseError {
    Fail(String),
    Skip(String),
}

impl From<String> for CaseError {
    fn from(s: String) -> Self {
        CaseError::Fail(s)
    }
}

impl From<&str> for CaseError {
    fn from(s: &str) -> Self {
        CaseError::Fail(s.to_string())
    }
}

impl From<chat_client::Error> for CaseError {
    fn from(e: chat_client::Error) -> Self {
        CaseError::Fail(e.to_string())
    }
}

/// A case's result.
pub type CaseResult = Result<(), CaseError>;

/// A value an earlier case produced, or a skip naming that case.
pub fn need<T: Clone>(v: &Option<T>, from: &str) -> Result<T, CaseError> {
    v.clone()
        .ok_or_else(|| CaseError::Skip(format!("needs the result of `{from}`, which failed")))
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

#[derive(Debug, Clone)]
pub struct Row {
    pub operation: String,
    pub case: String,
    pub outcome: Outcome,
    /// Where the server departs from the gateway's spec in this case (legacy level).
    pub departures: Vec<String>,
}

/// Everything a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub dialect: String,
    pub url: String,
    pub level: Level,
    pub rows: Vec<Row>,
    /// Things worth saying that are not cases (spec messages never received, ...).
    pub notes: Vec<String>,
    /// The cases the spec marks as the gateway's own promise.
    pub gateway_cases: Vec<GatewayCase>,
    /// Departures noticed by the spec since the last recorded case.
    pub pending: Departures,
}

impl Report {
    pub fn new(dialect: &str, url: &str) -> Report {
        Report {
            dialect: dialect.to_string(),
            url: url.to_string(),
            ..Report::default()
        }
    }

    /// Check at `level`, with the spec's gateway cases and departures.
    pub fn at_level(&mut self, level: Level, cases: Vec<GatewayCase>, pending: Departures) {
        self.level = level;
        self.gateway_cases = cases;
        self.pending = pending;
    }

    /// The gateway case `(operation, case)` is, if the spec marks it.
    fn gateway_case(&self, operation: &str, case: &str) -> Option<&GatewayCase> {
        self.gateway_cases
            .iter()
            .find(|g| g.operation == operation && g.case == case)
    }

    pub fn record(&mut self, operation: &str, case: &str, result: CaseResult) {
        let mut departures: Vec<String> = self
            .pending
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        let legacy = self.level == Level::Legacy;
        let outcome = match result {
            Ok(()) => Outcome::Pass,
            Err(CaseError::Fail(why)) => match self.gateway_case(operation, case) {
                Some(g) if legacy => {
                    let skip = format!("the seed does not promise this: {}", g.why);
                    departures.push(format!("the gateway's case fails here: {why}"));
                    Outcome::Skip(skip)
                }
                _ => Outcome::Fail(why),
            },
            Err(CaseError::Skip(why)) => Outcome::Skip(why),
        };
        if !legacy {
            departures.clear();
        }
        self.rows.push(Row {
            operation: operation.to_string(),
            case: case.to_string(),
            outcome,
            departures,
        });
    }

    /// Rows with departures.
    pub fn departed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| !r.departures.is_empty())
            .count()
    }

    /// Gateway cases of the spec that no row of this run is (a misspelt mark).
    pub fn unmatched_gateway_cases(&self) -> Vec<String> {
        self.gateway_cases
            .iter()
            .filter(|g| {
                !self
                    .rows
                    .iter()
                    .any(|r| r.operation == g.operation && r.case == g.case)
            })
            .map(|g| format!("{} / {}", g.operation, g.case))
            .collect()
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.rows.iter().filter(|r| f(&r.outcome)).count()
    }

    pub fn passed(&self) -> usize {
        self.count(|o| *o == Outcome::Pass)
    }

    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Fail(_)))
    }

    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skip(_)))
    }

    /// True when nothing failed and at least one case ran.
    pub fn success(&self) -> bool {
        self.failed() == 0 && self.passed() > 0
    }

    /// The failed rows, for test assertions.
    pub fn failures(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Fail(why) => Some(format!("{} / {}: {why}", r.operation, r.case)),
                _ => None,
            })
            .collect()
    }

    /// The table, with the reasons of failures and skips under their rows.
    pub fn render(&self) -> String {
        // A column is as wide as its longest cell, and at least as wide as its heading.
        let width = |cell: fn(&Row) -> &str, heading: &str| {
            self.rows
                .iter()
                .map(|r| cell(r).chars().count())
                .fold(heading.len(), usize::max)
        };
        let op_w = width(|r| &r.operation, "OPERATION");
        let case_w = width(|r| &r.case, "CASE");
        let mut out = String::new();
        let _ = writeln!(
            out,
            "dialect {} at {} (level {})",
            self.dialect,
            self.url,
            self.level.name()
        );
        let _ = writeln!(out, "{:<op_w$}  {:<case_w$}  RESULT", "OPERATION", "CASE");
        let _ = writeln!(out, "{}", "-".repeat(op_w + case_w + 10));
        for r in &self.rows {
            let (word, why) = match &r.outcome {
                Outcome::Pass => ("pass", None),
                Outcome::Fail(w) => ("FAIL", Some(w)),
                Outcome::Skip(w) => ("skip", Some(w)),
            };
            let _ = writeln!(out, "{:<op_w$}  {:<case_w$}  {word}", r.operation, r.case);
            if let Some(w) = why {
                let _ = writeln!(out, "{:<op_w$}    -> {w}", "");
            }
            for d in &r.departures {
                let _ = writeln!(out, "{:<op_w$}    ~ departs from the gateway: {d}", "");
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        let _ = writeln!(
            out,
            "{} (level {}): {} cases: {} pass, {} fail, {} skip; {} with departures",
            self.dialect,
            self.level.name(),
            self.rows.len(),
            self.passed(),
            self.failed(),
            self.skipped(),
            self.departed()
        );
        out
    }
}
