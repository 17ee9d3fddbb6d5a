//! The drafted table as the text of a `layers.toml`: each layer with a comment saying why
//! each of its crates is there, the `closed` hint, the rule switches and an exception
//! template. Comments are part of the product here: the file is a starting point a person
//! edits, and they should not have to rerun the analysis to see why a crate sits where it is.

use super::{Crates, Draft, Place, Plan, components};
use crate::metadata::EdgeKind;
use crate::rules::Rule;
use crate::table::default_header;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Text width of comments and arrays.
const WIDTH: usize = 96;

/// How many crates a comment names before it says `and N more`.
const NAMED: usize = 4;

const PREAMBLE: &str = "The layer table of this workspace, drafted by `cargo strata init` from \
its dependency graph. It describes the graph as it stands, so `cargo strata` finds no layer-edge \
or undeclared-crate violation against it; from here, make it the architecture you want: rename \
and merge layers, close them, add forbidden_external and source_rules (`cargo strata --help` \
documents every key). The same keys may live under [workspace.metadata.layers] in the root \
Cargo.toml instead (the headers then read [[workspace.metadata.layers.layer]] and so on); keep \
one of the two.";

const METHOD: &str = "How the layers were found: a crate no workspace crate depends on sits on \
top, at L1; any other sits one level below the lowest crate that depends on it (through a \
normal, build or dev dependency), so every dependency points down the stack. Crates that others \
use only from [dev-dependencies] form a dev_only side layer, and binaries with no workspace \
dependency either way an isolated side layer. Stack layers are left open: layers above may skip \
them until you close them.";

/// The whole file.
pub(super) fn table(crates: &Crates, plan: &Plan) -> String {
    let mut out = String::new();
    comment(&mut out, PREAMBLE);
    out.push_str("#\n");
    comment(&mut out, METHOD);
    if let Some(why) = &crates.unresolved {
        out.push_str("#\n");
        comment(
            &mut out,
            &format!(
                "cargo cannot resolve this workspace's dependency graph ({why}); the layers \
                 follow the declared dependencies, and each cycle shares a layer."
            ),
        );
    }
    out.push('\n');
    out.push_str(
        "# Names no crate, module, fn or type may end with (rule banned-name):\n\
         # banned_name_suffixes = [\"_service\"]\n",
    );
    for layer in &plan.layers {
        out.push('\n');
        self::layer(&mut out, crates, plan, layer);
    }
    out.push('\n');
    rules(&mut out, crates, plan);
    out.push_str(
        "\n# An accepted violation, with its reason (ids and targets as the report prints them):\n\
         # [[exceptions]]\n\
         # rule = \"unused-dependency\"\n\
         # crate = \"some-crate\"\n\
         # target = \"the-dependency\"\n\
         # reason = \"why this is acceptable\"\n",
    );
    out
}

/// One `[[layer]]` entry with its comment.
fn layer(out: &mut String, crates: &Crates, plan: &Plan, layer: &Draft) {
    match layer.place {
        Place::Stack(1) => comment(
            out,
            &format!("{} {} (the top of the stack):", layer.level, layer.name),
        ),
        Place::Stack(_) => comment(out, &format!("{} {}:", layer.level, layer.name)),
        Place::DevOnly => comment(
            out,
            &format!(
                "{}: test support, crates the others use only from [dev-dependencies]. Any \
                 layer may use it there, none from [dependencies] or [build-dependencies]; \
                 also_uses lists the stack layers its crates use.",
                layer.name
            ),
        ),
        Place::Isolated => comment(
            out,
            &format!(
                "{}: binaries with no workspace dependency either way. Nothing may use them, \
                 and they use no workspace crate; when one starts to use a library of the \
                 workspace, drop `isolated` and list that library's layer in also_uses.",
                layer.name
            ),
        ),
    }
    for cycle in plan
        .cycles
        .iter()
        .filter(|cycle| layer.crates.contains(&cycle[0]))
    {
        comment(out, &cycle_note(crates, cycle));
    }
    for &krate in &layer.crates {
        let why = match layer.place {
            Place::Stack(level) => stack_reason(crates, plan, krate, level),
            Place::DevOnly => {
                let users = parents(crates, krate).into_keys().collect::<Vec<_>>();
                format!("dev-dependency of {}", list(&users))
            }
            Place::Isolated => "a binary, no workspace dependency either way".to_owned(),
        };
        wrap(
            out,
            &format!("{}: {why}", crates.name(krate)),
            "#   ",
            "#     ",
        );
    }
    out.push_str("[[layer]]\n");
    let _ = writeln!(out, "name = {}", quote(&layer.name));
    let _ = writeln!(out, "level = {}", quote(&layer.level));
    match layer.place {
        Place::Stack(_) => {}
        Place::DevOnly => out.push_str("side = true\ndev_only = true\n"),
        Place::Isolated => out.push_str("side = true\nisolated = true\n"),
    }
    let names: Vec<&str> = layer.crates.iter().map(|&i| crates.name(i)).collect();
    array(out, "crates", &names);
    if !layer.also_uses.is_empty() {
        let used: Vec<&str> = layer.also_uses.iter().map(String::as_str).collect();
        array(out, "also_uses", &used);
    }
    if layer.siblings {
        out.push_str("siblings_may_depend = true\n");
    }
    // Closing the top or the bottom layer would refuse nothing, ever: nothing skips them.
    let bottom = plan
        .layers
        .iter()
        .filter(|l| matches!(l.place, Place::Stack(_)))
        .count();
    if let Place::Stack(level) = layer.place
        && level > 1
        && level < bottom as u32
    {
        out.push_str(&closed_hint(crates, plan, level));
    }
}

/// Why crate `krate` sits at `level`: the crates above that depend on it, the lowest first.
fn stack_reason(crates: &Crates, plan: &Plan, krate: usize, level: u32) -> String {
    let all = parents(crates, krate);
    let mut above: Vec<(u32, &str, String)> = all
        .iter()
        .filter_map(|(name, kinds)| {
            let parent = crates.members.iter().position(|m| m.name == *name)?;
            let parent_level = plan.level(parent).filter(|l| *l < level)?;
            let how = if kinds.contains(&EdgeKind::Normal) {
                String::new()
            } else {
                let labels: Vec<&str> = kinds.iter().map(|k| k.label()).collect();
                format!(", {}", labels.join(" and "))
            };
            Some((parent_level, *name, how))
        })
        .collect();
    // The lowest parent sets the level; name it first.
    above.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    if !above.is_empty() {
        let named: Vec<String> = above
            .iter()
            .map(|(l, name, how)| format!("{name} (L{l}{how})"))
            .collect();
        return format!("used by {}", list(&named));
    }
    let in_cycle = plan.cycles.iter().any(|c| c.contains(&krate));
    let uses = crates.edges.iter().any(|e| e.from == krate);
    let dev_users: Vec<&str> = all
        .keys()
        .copied()
        .filter(|name| {
            crates
                .members
                .iter()
                .position(|m| m.name == *name)
                .is_some_and(|i| plan.places[i] == Place::DevOnly)
        })
        .collect();
    if !dev_users.is_empty() {
        format!("used only by the dev-only layer ({})", list(&dev_users))
    } else if in_cycle {
        "nothing outside its cycle depends on it".to_owned()
    } else if !uses {
        "no workspace dependency either way; a library, so on the stack, ready for its first \
         user, rather than in an isolated layer"
            .to_owned()
    } else {
        "nothing depends on it".to_owned()
    }
}

/// The crates depending on `krate`, by name, with the kinds of their dependencies.
fn parents(crates: &Crates, krate: usize) -> BTreeMap<&str, Vec<EdgeKind>> {
    let mut parents: BTreeMap<&str, Vec<EdgeKind>> = BTreeMap::new();
    for edge in crates.edges_into(krate) {
        parents
            .entry(crates.name(edge.from))
            .or_default()
            .push(edge.kind);
    }
    parents
}

/// What a cycle is and what to do about it.
fn cycle_note(crates: &Crates, cycle: &[usize]) -> String {
    let inside: Vec<_> = crates
        .edges
        .iter()
        .filter(|e| cycle.contains(&e.from) && cycle.contains(&e.to))
        .collect();
    let edges: Vec<String> = inside
        .iter()
        .map(|e| {
            format!(
                "{} -> {} as a {}",
                crates.name(e.from),
                crates.name(e.to),
                e.kind.label()
            )
        })
        .collect();
    let names: Vec<&str> = cycle.iter().map(|&i| crates.name(i)).collect();
    // Cargo accepts a cycle only through dev-dependencies; without them, it is still a cycle.
    let mut linked = vec![Vec::new(); crates.members.len()];
    for edge in inside.iter().filter(|e| e.kind != EdgeKind::Dev) {
        linked[edge.from].push(edge.to);
    }
    let included: Vec<bool> = (0..crates.members.len())
        .map(|i| cycle.contains(&i))
        .collect();
    let refused = components(&linked, &included).iter().any(|c| c.len() > 1);
    format!(
        "{} depend on each other ({}), so they share this layer with siblings_may_depend. {}\
         Break the cycle, then split the layer and drop siblings_may_depend.",
        list(&names),
        list(&edges),
        if refused {
            "Cargo cannot build the workspace while it stands. "
        } else {
            ""
        }
    )
}

/// The commented `closed = true`, saying what closing the layer at `level` would refuse today.
fn closed_hint(crates: &Crates, plan: &Plan, level: u32) -> String {
    let skipping: Vec<String> = crates
        .edges
        .iter()
        .filter(|e| {
            let (Some(from), Some(to)) = (plan.level(e.from), plan.level(e.to)) else {
                return false;
            };
            from < level && level < to
        })
        .map(|e| format!("{} -> {}", crates.name(e.from), crates.name(e.to)))
        .collect();
    let why = if skipping.is_empty() {
        "no dependency skips it today".to_owned()
    } else {
        let mut unique = skipping;
        unique.dedup();
        format!("today it would refuse {}", list(&unique))
    };
    let mut out = String::new();
    wrap(
        &mut out,
        &format!("closed = true  (layers above may not skip it; {why})"),
        "# ",
        "#   ",
    );
    out
}

/// The `[rules]` table: every rule switched on but `layer-header`, with how to adopt it.
fn rules(out: &mut String, crates: &Crates, plan: &Plan) {
    let example = plan
        .layers
        .iter()
        .flat_map(|l| l.crates.iter().map(move |&i| (l, i)))
        .find_map(|(layer, i)| {
            let file = crates.members[i].root_file.as_ref()?;
            let header = default_header()
                .replace("{level}", &layer.level)
                .replace("{name}", &layer.name);
            Some(format!(" ({file}: `{header}`)"))
        })
        .unwrap_or_default();
    comment(
        out,
        &format!(
            "Every rule's switch. layer-header is off because the crate roots do not carry \
             the headers of these layers yet: to adopt them, start each crate root (its lib.rs, else each \
             main.rs) with its layer's line{example}, then switch it on. deny-sync reads \
             deny.toml only where there is one (`cargo strata --write-deny` writes its \
             generated block)."
        ),
    );
    out.push_str("[rules]\n");
    for &rule in Rule::ALL {
        let _ = writeln!(out, "{} = {}", rule.id(), rule != Rule::LayerHeader);
    }
}

/// `a, b, c, d and 3 more`.
fn list<T: AsRef<str>>(items: &[T]) -> String {
    let shown: Vec<&str> = items.iter().take(NAMED).map(AsRef::as_ref).collect();
    let more = items.len().saturating_sub(NAMED);
    match (shown.split_last(), more) {
        (None, _) => String::new(),
        (Some((last, [])), 0) => (*last).to_owned(),
        (Some((last, rest)), 0) => format!("{} and {last}", rest.join(", ")),
        (Some(_), more) => format!("{} and {more} more", shown.join(", ")),
    }
}

/// `text` as `#` comment lines.
fn comment(out: &mut String, text: &str) {
    wrap(out, text, "# ", "# ");
}

/// `text` wrapped at [`WIDTH`], the first line after `first`, the others after `rest`.
fn wrap(out: &mut String, text: &str, first: &str, rest: &str) {
    let mut line = String::from(first);
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.len() + 1 + word.len() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = String::from(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// `key = ["a", "b"]`, one item a line when that would not fit on one.
fn array(out: &mut String, key: &str, items: &[&str]) {
    let quoted: Vec<String> = items.iter().map(|item| quote(item)).collect();
    let line = format!("{key} = [{}]", quoted.join(", "));
    if line.len() <= WIDTH {
        out.push_str(&line);
        out.push('\n');
        return;
    }
    let _ = writeln!(out, "{key} = [");
    for item in quoted {
        let _ = writeln!(out, "    {item},");
    }
    out.push_str("]\n");
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
