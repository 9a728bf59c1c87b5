//! `lightbox audit`: the audit trail of the cache, filtered by date or study.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{cache_root, to_json};
use crate::audit::{self, Action, Event, EventId, Filter, Message, Role};
use crate::error::Result;

fn outcome_word(v: u8) -> &'static str {
    match v {
        0 => "success",
        4 => "minor failure",
        8 => "serious failure",
        _ => "major failure",
    }
}

/// "AE@address" of a participant.
fn who(m: &Message, requestor: bool) -> String {
    m.active_participant
        .iter()
        .filter(|p| p.user_is_requestor == requestor)
        .map(|p| match &p.network_access_point_id {
            Some(a) => format!("{}@{a}", p.user_id),
            None => p.user_id.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn line(m: &Message) -> String {
    let mut event = m.event_id.meaning.clone();
    if let Some(t) = m.event_type_code.first() {
        event = format!("{event} ({})", t.meaning);
    }
    let others = who(m, false);
    let parties = if others.is_empty() {
        who(m, true)
    } else {
        format!("{} → {others}", who(m, true))
    };
    let objects: Vec<String> = m
        .participant_object_identification
        .iter()
        .map(
            |o| match (o.participant_object_type_code, &o.participant_object_query) {
                (_, Some(q)) => format!("query {q}"),
                (1, _) => format!(
                    "patient {} {}",
                    o.participant_object_id,
                    o.participant_object_name.as_deref().unwrap_or("")
                )
                .trim_end()
                .to_string(),
                _ => match o.number_of_instances {
                    Some(n) => format!("study {} ({n})", o.participant_object_id),
                    None => format!("study {}", o.participant_object_id),
                },
            },
        )
        .collect();
    let mut text = format!(
        "{}  {}  {}  {}",
        m.event_date_time,
        event,
        outcome_word(m.event_outcome_indicator),
        parties
    );
    if !objects.is_empty() {
        text.push_str("  ");
        text.push_str(&objects.join("; "));
    }
    if let Some(d) = &m.event_outcome_description {
        text.push_str(&format!("  ({d})"));
    }
    text
}

/// `lightbox audit`.
pub(super) fn cmd_audit(
    since: Option<String>,
    study: Option<String>,
    json: bool,
    cache: Option<PathBuf>,
) -> Result<ExitCode> {
    let root = cache_root(cache)?;
    let filter = Filter { since, study };
    let (messages, torn) = audit::read(&root, &filter)?;
    if json {
        out!("{}", to_json(&messages)?);
    } else if messages.is_empty() {
        out!("no audit events in {}", audit::path(&root).display());
    } else {
        for m in &messages {
            out!("{}", line(m));
        }
    }
    if torn > 0 {
        eprintln!(
            "warning: {torn} line(s) of {} are not audit messages (cut short?); skipped",
            audit::path(&root).display()
        );
    }
    // Reading the trail is itself audited.
    let mut e = Event::new(
        EventId::AuditLogUsed,
        Action::Read,
        "lightbox",
        Role::Application,
    )
    .describe(format!("{} event(s) read", messages.len()));
    if let Some(s) = &filter.study {
        e = e.study(s, None);
    }
    e.record(&root);
    Ok(ExitCode::SUCCESS)
}
