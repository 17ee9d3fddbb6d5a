//! `banned-name`: no crate, module file or item carries a banned suffix (`_service`): a name
//! should say what a thing does (an engine decides, a driver reads and writes), and
//! "service" says nothing.
//!
//! Names are compared in snake case, so `TenantService` and `TENANT_SERVICE` both end with
//! `_service`, while `Microservice` does not.

use super::Rule;
use crate::Workspace;
use crate::lexer::TokenKind;
use crate::report::{Report, Violation};
use crate::sources::Role;

/// Keywords that introduce a named item.
const ITEM_KEYWORDS: &[&str] = &[
    "mod", "fn", "struct", "enum", "union", "trait", "type", "const", "static",
];

/// Checks crate names, module file names and item names in product code.
pub(crate) fn check(ws: &Workspace<'_>, report: &mut Report) {
    let suffixes = &ws.table.banned_name_suffixes;
    if suffixes.is_empty() {
        return;
    }
    for (name, package) in &ws.graph.members {
        report.checked(Rule::BannedName, name);
        let mut push = |file: String, line: usize, banned: &str, message: String| {
            report.push(Violation {
                chain: Vec::new(),
                file,
                line,
                rule: Rule::BannedName,
                krate: (*name).to_owned(),
                target: banned.to_owned(),
                message,
            });
        };
        if let Some(suffix) = banned_suffix(name, suffixes) {
            push(
                ws.relative(&package.manifest_path),
                ws.manifests.package_name_line(&package.manifest_path),
                name,
                format!("crate name `{name}` ends with banned suffix `{suffix}`"),
            );
        }
        let Some(sources) = ws.sources.get(name) else {
            continue;
        };
        for file in sources.files.iter().filter(|f| f.role == Role::Product) {
            let relative = ws.relative(&file.path);
            let stem = file.path.file_stem().and_then(|s| s.to_str());
            let module = match stem {
                Some("mod") => file
                    .path
                    .parent()
                    .and_then(|p| p.file_name())
                    .and_then(|s| s.to_str()),
                other => other,
            };
            if let Some(module) = module
                && let Some(suffix) = banned_suffix(module, suffixes)
            {
                push(
                    relative.clone(),
                    1,
                    module,
                    format!("module file `{module}` ends with banned suffix `{suffix}`"),
                );
            }
            for pair in file.tokens.windows(2) {
                let [keyword, item] = pair else { continue };
                if keyword.kind != TokenKind::Ident
                    || item.kind != TokenKind::Ident
                    || !ITEM_KEYWORDS.contains(&keyword.text.as_str())
                {
                    continue;
                }
                if let Some(suffix) = banned_suffix(&item.text, suffixes) {
                    push(
                        relative.clone(),
                        item.line,
                        &item.text,
                        format!(
                            "`{} {}` ends with banned suffix `{suffix}`",
                            keyword.text, item.text
                        ),
                    );
                }
            }
        }
    }
}

/// The first banned suffix `name` ends with, compared in snake case.
fn banned_suffix<'s>(name: &str, suffixes: &'s [String]) -> Option<&'s str> {
    let snake = snake_case(name);
    suffixes.iter().map(|s| s.as_str()).find(|suffix| {
        let suffix = suffix.to_lowercase();
        snake.ends_with(&suffix) && snake.len() > suffix.len()
    })
}

/// `TenantService` → `tenant_service`, `HTTPService` → `http_service`, `a-b` → `a_b`.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (index, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && index > 0 {
            let previous = chars[index - 1];
            let next_is_lower = chars.get(index + 1).is_some_and(|n| n.is_lowercase());
            let boundary = previous.is_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_uppercase() && next_is_lower);
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_splits_words() {
        assert_eq!(snake_case("TenantService"), "tenant_service");
        assert_eq!(snake_case("HTTPService"), "http_service");
        assert_eq!(snake_case("TENANT_SERVICE"), "tenant_service");
        assert_eq!(snake_case("account-service"), "account_service");
        assert_eq!(snake_case("Microservice"), "microservice");
    }

    #[test]
    fn suffixes_match_whole_words_in_snake_case() {
        let banned = ["_service".to_owned()];
        assert_eq!(banned_suffix("billing_service", &banned), Some("_service"));
        assert_eq!(banned_suffix("BillingService", &banned), Some("_service"));
        assert_eq!(banned_suffix("microservice", &banned), None);
        assert_eq!(banned_suffix("service", &banned), None);
        assert_eq!(banned_suffix("services", &banned), None);
    }
}
