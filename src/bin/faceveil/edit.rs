// SPDX-License-Identifier: MIT
//! `edit`, `suspend` and `resume`: change a person's label, note, expiry or role, and stop or
//! restart their alerts, without a photo. Each change is one audited write of the list, like `enroll`'s.

use clap::Args;
use gstfaceveil::engine::watchlist::{Role, now};

use crate::Global;
use crate::enroll::parse_expiry;
use crate::shared::{Fail, change_locked, event, find_identity, fmt_time};

#[derive(Args)]
#[command(group = clap::ArgGroup::new("change").required(true).multiple(true))]
pub(crate) struct EditArgs {
    /// The person: their identity id, or their label
    #[arg(long, value_name = "ID|LABEL")]
    identity: String,
    /// New label (shown in alerts); no one else on the list may have it
    #[arg(long, group = "change")]
    label: Option<String>,
    /// New note (why the person is on the list)
    #[arg(long, group = "change", conflicts_with = "no_note")]
    note: Option<String>,
    /// Remove the note
    #[arg(long, group = "change")]
    no_note: bool,
    /// New expiry: an RFC 3339 time or a duration from now (30d), as for enroll. Only an earlier
    /// one unless --extend
    #[arg(long, group = "change", value_name = "TIME|DURATION")]
    expires: Option<String>,
    /// Never expires (needs --extend when the person has an expiry)
    #[arg(long, group = "change", conflicts_with = "expires")]
    no_expiry: bool,
    /// Allow --expires or --no-expiry to keep the person longer than their expiry now (or to
    /// bring back one who has expired)
    #[arg(long)]
    extend: bool,
    /// New role: listed (looked for: alerts), or known (never alerted on; see enroll --known)
    #[arg(long, group = "change", value_parser = ["listed", "known"])]
    role: Option<String>,
}

/// Whether expiry `new` keeps a person longer than `old` (`None`: never expires).
fn lengthens(old: Option<i64>, new: Option<i64>) -> bool {
    match (old, new) {
        (Some(o), Some(n)) => n > o,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn show_expiry(t: Option<i64>) -> String {
    t.map_or("never".into(), fmt_time)
}

pub(crate) fn cmd_edit(g: &Global, a: EditArgs) -> Result<(), Fail> {
    let EditArgs {
        identity,
        label,
        note,
        no_note,
        expires,
        no_expiry,
        extend,
        role,
    } = a;
    let role = role.map(|r| match r.as_str() {
        "known" => Role::Known,
        _ => Role::Listed,
    });
    let expires = match (expires.as_deref().map(parse_expiry).transpose()?, no_expiry) {
        (Some(t), _) => Some(Some(t)),
        (None, true) => Some(None),
        (None, false) => None,
    };
    if extend && expires.is_none() {
        return Err(Fail(
            2,
            "--extend goes with --expires or --no-expiry".into(),
        ));
    }
    let outcome = change_locked(g, |list| {
        let k = find_identity(g, list, &identity)?;
        if let Some(l) = &label
            && list
                .identities
                .iter()
                .enumerate()
                .any(|(j, i)| j != k && i.label == *l)
        {
            return Err(Fail(
                2,
                format!("{l} is the label of someone else on the list; choose another"),
            ));
        }
        let i = &mut list.identities[k];
        let mut changes = Vec::new();
        if let Some(t) = expires
            && t != i.expires_at
        {
            if lengthens(i.expires_at, t) && !extend {
                return Err(Fail(
                    2,
                    format!(
                        "{} expires {}; {} would keep them longer: give --extend to do that",
                        i.label,
                        show_expiry(i.expires_at),
                        t.map_or("--no-expiry".into(), |t| format!(
                            "--expires {}",
                            fmt_time(t)
                        ))
                    ),
                ));
            }
            changes.push(format!(
                "expires {} → {}",
                show_expiry(i.expires_at),
                show_expiry(t)
            ));
            i.expires_at = t;
        }
        let new_note = if no_note { Some(None) } else { note.map(Some) };
        if let Some(n) = new_note
            && n != i.note
        {
            // The note's text stays out of the log (it is about the person).
            changes.push(
                if n.is_some() {
                    "note set"
                } else {
                    "note removed"
                }
                .into(),
            );
            i.note = n;
        }
        if let Some(l) = label
            && l != i.label
        {
            changes.push(format!("label {} → {l}", i.label));
            i.label = l;
        }
        if let Some(r) = role
            && r != i.role
        {
            changes.push(format!("role {} → {}", i.role.name(), r.name()));
            i.role = r;
        }
        if changes.is_empty() {
            return Ok((None, Vec::new()));
        }
        let detail = changes.join("; ");
        let e = event("edit", Some((&i.id, &i.label)), Some(detail.clone()));
        Ok((Some(format!("{} ({}): {detail}", i.label, i.id)), vec![e]))
    })?;
    match outcome {
        Some(what) => println!("edited {what}"),
        None => println!("nothing to change: the identity already has these values"),
    }
    Ok(())
}

/// `suspend` (`on`) or `resume` (not `on`) the person `which`.
pub(crate) fn cmd_suspend(g: &Global, which: &str, on: bool) -> Result<(), Fail> {
    let action = if on { "suspend" } else { "resume" };
    let (id, label, changed, expired, known) = change_locked(g, |list| {
        let k = find_identity(g, list, which)?;
        let i = &mut list.identities[k];
        let (id, label, expired, known) =
            (i.id.clone(), i.label.clone(), i.expired(now()), i.known());
        if i.suspended == on {
            return Ok(((id, label, false, expired, known), Vec::new()));
        }
        i.suspended = on;
        // Resumed but expired: still no alerts; the log says so.
        let detail = (!on && expired).then(|| "still expired: no alerts".to_string());
        let e = event(action, Some((&id, &label)), detail);
        Ok(((id, label, true, expired, known), vec![e]))
    })?;
    // What the person's entry does: a listed person raises alerts, a known one holds them back.
    let effect = match known {
        true => "faces held back for them",
        false => "alerts for them",
    };
    match (changed, on) {
        (false, true) => println!("{label} ({id}) is already suspended"),
        (false, false) => println!("{label} ({id}) is not suspended"),
        (true, true) => println!(
            "suspended {label} ({id}): no {effect} until 'faceveil resume' (running matchers take \
             the list within about a second)"
        ),
        (true, false) if expired => println!(
            "resumed {label} ({id}), but they have expired: still no {effect} ('edit --expires … \
             --extend' keeps them longer)"
        ),
        (true, false) => println!("resumed {label} ({id}): {effect} again"),
    }
    Ok(())
}
