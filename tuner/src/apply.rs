//! `apply` and `rollback`: change the host with an undo journal written first.
//!
//! Order of events in `apply`: (1) every value about to change is added to the state file,
//! which is written atomically; (2) items are changed one by one, each read back; (3) on the
//! first failure the items this run changed are restored in reverse order and their entries
//! leave the state file. A crash between (1) and the end leaves a state file that `rollback`
//! uses to restore the original values. A second `apply` keeps the originals recorded by the
//! first, so rollback always returns to the host as it was before petrel-tuner touched it.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::host::Host;
use crate::plan::{Action, Compare, Plan, PlannedItem, Target};
use crate::state::{Entry, State, StateStore};

#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyOutcome {
    /// Keys changed, in order.
    pub changed: Vec<String>,
    pub already_set: usize,
    pub skipped: Vec<(String, String)>,
    /// The kernel command line differs from the profile: reboot to finish.
    pub reboot_needed: bool,
    /// Things the operator should know (boot config regenerated or not, services to restart).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RollbackOutcome {
    pub restored: Vec<String>,
    /// Entries whose knob no longer exists (an IRQ renumbered by a reboot, say).
    pub gone: Vec<String>,
    pub reboot_needed: bool,
    pub notes: Vec<String>,
}

/// Applies `plan` (made just before, under the same lock) to `host`.
pub fn apply(host: &Host, store: &StateStore, plan: &Plan) -> Result<ApplyOutcome> {
    let unavailable: Vec<String> = plan
        .items
        .iter()
        .filter_map(|i| match &i.action {
            Action::Unavailable { reason } => Some(format!("  {}: {reason}", i.key)),
            _ => None,
        })
        .collect();
    if !unavailable.is_empty() {
        return Err(Error::Unavailable { profile: plan.profile.clone(), items: unavailable.join("\n") });
    }

    let changes: Vec<&PlannedItem> = plan.changes().collect();
    let mut outcome = ApplyOutcome {
        already_set: plan.items.iter().filter(|i| i.action == Action::AlreadySet).count(),
        skipped: plan
            .items
            .iter()
            .filter_map(|i| match &i.action {
                Action::Skip { reason } => Some((i.key.clone(), reason.clone())),
                _ => None,
            })
            .collect(),
        reboot_needed: plan.reboot_pending(),
        ..ApplyOutcome::default()
    };
    if changes.is_empty() {
        return Ok(outcome);
    }

    let previous = store.load()?;
    let had_state = previous.is_some();
    let mut state = previous.unwrap_or_else(|| State::new(&plan.profile));
    let recorded_before = state.entries.len();
    for item in &changes {
        if !state.has(&item.key) {
            state.entries.push(entry_for(item));
        }
    }
    store.save(&state)?;

    let mut done: Vec<&PlannedItem> = Vec::new();
    for item in &changes {
        if let Err(failure) = change(host, item) {
            let mut restore_failures = Vec::new();
            // A write the kernel took but then read back differently has changed the knob.
            match left_changed(host, item) {
                Ok(false) => {}
                Ok(true) => {
                    if let Err(e) = restore_planned(host, item) {
                        restore_failures.push(format!("  {}: {e}", item.key));
                    }
                }
                Err(e) => restore_failures.push(format!("  {}: {e}", item.key)),
            }
            for undo in done.iter().rev() {
                if let Err(e) = restore_planned(host, undo) {
                    restore_failures.push(format!("  {}: {e}", undo.key));
                }
            }
            let restored: Vec<&str> = done.iter().map(|i| i.key.as_str()).collect();
            if !restore_failures.is_empty() {
                return Err(Error::RestoreFailed(format!(
                    "apply failed at {}: {failure}\nrestoring what it had changed also failed:\n{}\n\
                     the original values are kept in {}; fix the cause and run `petrel-tuner rollback`",
                    item.key,
                    restore_failures.join("\n"),
                    store.state_path().display()
                )));
            }
            state.entries.truncate(recorded_before);
            if had_state {
                store.save(&state)?;
            } else {
                store.remove()?;
            }
            return Err(Error::ApplyFailed(format!(
                "apply failed at {}: {failure}\nrestored the {} item(s) changed before it{}",
                item.key,
                restored.len(),
                if restored.is_empty() { String::new() } else { format!(": {}", restored.join(", ")) }
            )));
        }
        done.push(item);
        outcome.changed.push(item.key.clone());
    }

    for item in &done {
        if item.key.starts_with("irqbalance:") {
            outcome.notes.push(
                "restart irqbalance (systemctl restart irqbalance) so it reads IRQBALANCE_BANNED_CPULIST"
                    .to_string(),
            );
        }
        if item.key == "grub:dropin" {
            outcome.notes.push(regenerate_boot_config(host));
        }
    }
    Ok(outcome)
}

/// Restores every value recorded in the state file, newest first, then removes the file. On a
/// partial failure the state file keeps only the entries still to restore.
pub fn rollback(host: &Host, store: &StateStore) -> Result<RollbackOutcome> {
    let mut outcome = RollbackOutcome::default();
    let Some(mut state) = store.load()? else {
        return Ok(outcome);
    };
    let mut failed = Vec::new();
    let mut messages = Vec::new();
    for entry in state.entries.iter().rev() {
        match restore_entry(host, entry) {
            Ok(Restored::Written) => {
                outcome.restored.push(entry.key().to_string());
                // The command line only follows the drop-in at the next boot.
                outcome.reboot_needed |= entry.key() == "grub:dropin";
            }
            Ok(Restored::AlreadyOriginal) => outcome.restored.push(entry.key().to_string()),
            Ok(Restored::Gone) => outcome.gone.push(entry.key().to_string()),
            Err(e) => {
                messages.push(format!("  {}: {e}", entry.key()));
                failed.push(entry.clone());
            }
        }
    }
    if !failed.is_empty() {
        failed.reverse();
        state.entries = failed;
        store.save(&state)?;
        return Err(Error::RestoreFailed(format!(
            "rollback could not restore:\n{}\nthose entries stay in {}; fix the cause and run rollback again",
            messages.join("\n"),
            store.state_path().display()
        )));
    }
    store.remove()?;
    if outcome.reboot_needed {
        outcome.notes.push(regenerate_boot_config(host));
    }
    Ok(outcome)
}

fn entry_for(item: &PlannedItem) -> Entry {
    let original = item.original.clone().expect("only items read from the host are planned as Set");
    match &item.target {
        Target::Knob { path, compare } => Entry::Knob {
            key: item.key.clone(),
            path: path.clone(),
            compare: *compare,
            original: original.expect("a knob that was read exists"),
        },
        Target::File { path, .. } => Entry::File { key: item.key.clone(), path: path.clone(), original },
        Target::Cmdline | Target::Report => {
            unreachable!("{} is never planned as Set", item.key)
        }
    }
}

fn change(host: &Host, item: &PlannedItem) -> Result<()> {
    match &item.target {
        Target::Knob { path, compare } => {
            let write = match compare {
                // Masks are written as masks; the plan shows them as lists.
                Compare::CpuMask => crate::cpuset::CpuSet::parse_list(&item.wanted)
                    .expect("the planner produced this list")
                    .to_mask(),
                _ => item.wanted.clone(),
            };
            host.write_knob(path, &write)?;
            check_read_back(host, path, *compare, &item.wanted)
        }
        Target::File { path, content } => host.write_file(path, Some(content)),
        Target::Cmdline | Target::Report => {
            unreachable!("{} is never planned as Set", item.key)
        }
    }
}

fn left_changed(host: &Host, item: &PlannedItem) -> Result<bool> {
    match (&item.target, &item.original) {
        (Target::Knob { path, compare }, Some(Some(original))) => {
            let now = host.read(path)?.unwrap_or_default();
            Ok(compare.canonical(&now).ok() != compare.canonical(original).ok())
        }
        (Target::File { path, .. }, Some(original)) => Ok(host.read(path)? != *original),
        _ => Ok(false),
    }
}

fn restore_planned(host: &Host, item: &PlannedItem) -> Result<()> {
    restore_entry(host, &entry_for(item)).map(|_| ())
}

enum Restored {
    Written,
    /// A file already holding its original content (apply stopped before reaching it).
    AlreadyOriginal,
    /// The knob no longer exists, so there is nothing left to restore.
    Gone,
}

fn restore_entry(host: &Host, entry: &Entry) -> Result<Restored> {
    match entry {
        Entry::Knob { path, compare, original, .. } => {
            if !host.exists(path) {
                return Ok(Restored::Gone);
            }
            host.write_knob(path, original)?;
            let wanted = compare
                .canonical(original)
                .map_err(|source| Error::HostValue { path: host.path(path), source })?;
            check_read_back(host, path, *compare, &wanted)?;
            Ok(Restored::Written)
        }
        Entry::File { path, original, .. } => {
            if host.read(path)? == *original {
                return Ok(Restored::AlreadyOriginal);
            }
            host.write_file(path, original.as_deref())?;
            Ok(Restored::Written)
        }
    }
}

/// The kernel may accept a write and keep another value (a clamp, a refused governor):
/// a change counts only once the knob reads back as wanted.
fn check_read_back(host: &Host, path: &str, compare: Compare, wanted: &str) -> Result<()> {
    let raw = host.read(path)?.unwrap_or_default();
    let now = compare.canonical(&raw).map_err(|source| Error::HostValue { path: host.path(path), source })?;
    if now != wanted {
        return Err(Error::io(
            host.path(path),
            std::io::Error::other(format!("wrote `{wanted}` but the kernel reports `{now}`")),
        ));
    }
    Ok(())
}

/// On the live host, runs update-grub so the drop-in reaches the boot loader; on a fake tree
/// or without update-grub, says what the operator must do.
fn regenerate_boot_config(host: &Host) -> String {
    let update_grub = Path::new("/usr/sbin/update-grub");
    if !host.is_live() || !update_grub.exists() {
        return "regenerate the boot loader configuration (update-grub) before rebooting".to_string();
    }
    match Command::new(update_grub).output() {
        Ok(out) if out.status.success() => "update-grub regenerated the boot configuration".to_string(),
        Ok(out) => format!(
            "update-grub failed ({}): {}; run it by hand before rebooting",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("could not run update-grub: {e}; run it by hand before rebooting"),
    }
}
