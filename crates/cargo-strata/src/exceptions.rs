//! Exceptions: accepted violations, each with a reason. One without a reason, or naming a
//! rule that takes none, is `invalid-exception`; one that matches nothing is `stale-exception`,
//! so the list cannot rot.

use crate::report::{Report, Violation};
use crate::rules::Rule;
use crate::table::{Exception, TableLines};

/// Removes the violations the valid exceptions accept, then reports the exceptions that are
/// invalid or stale, located at their entries in `table_file`. An exception for a rule in
/// `skipped` (rules that could not run) is not stale.
pub(crate) fn apply(
    report: &mut Report,
    exceptions: &[Exception],
    skipped: &[Rule],
    table_file: &str,
    lines: &TableLines,
) {
    let mut used = vec![false; exceptions.len()];
    let problems: Vec<Option<String>> = exceptions.iter().map(problem).collect();
    report.violations.retain(|violation| {
        let accepted = exceptions.iter().enumerate().find(|(index, exception)| {
            problems[*index].is_none()
                && exception.rule == violation.rule.id()
                && exception.krate == violation.krate
                && exception.target == violation.target
        });
        if let Some((index, _)) = accepted {
            used[index] = true;
        }
        accepted.is_none()
    });
    for (index, exception) in exceptions.iter().enumerate() {
        report.checked(Rule::InvalidException, &exception.krate);
        report.checked(Rule::StaleException, &exception.krate);
        let label = format!(
            "exception {{ rule = {:?}, crate = {:?}, target = {:?} }}",
            exception.rule, exception.krate, exception.target
        );
        let (rule, message) = match &problems[index] {
            Some(problem) => (Rule::InvalidException, format!("{label} {problem}")),
            None if !used[index]
                && !Rule::from_id(&exception.rule).is_some_and(|r| skipped.contains(&r)) =>
            {
                (
                    Rule::StaleException,
                    format!("{label} matches no violation; remove it"),
                )
            }
            None => continue,
        };
        report.push(Violation {
            chain: Vec::new(),
            file: table_file.to_owned(),
            line: lines.exception(index),
            rule,
            krate: exception.krate.clone(),
            target: exception.target.clone(),
            message,
        });
    }
}

/// Why an exception cannot be used, if it cannot.
fn problem(exception: &Exception) -> Option<String> {
    let Some(rule) = Rule::from_id(&exception.rule) else {
        let known: Vec<&str> = Rule::ALL
            .iter()
            .copied()
            .filter(|r| r.accepts_exceptions())
            .map(Rule::id)
            .collect();
        return Some(format!(
            "names unknown rule `{}` (rules that take exceptions: {})",
            exception.rule,
            known.join(", ")
        ));
    };
    if !rule.accepts_exceptions() {
        return Some(format!(
            "names `{rule}`, which takes no exceptions: fix the cause instead"
        ));
    }
    if exception.reason.trim().is_empty() {
        return Some("has no reason; say why the violation is acceptable".to_owned());
    }
    None
}
