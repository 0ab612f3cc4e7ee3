// SPDX-License-Identifier: MIT
//! Tests of the audit log: chains, the kinds of change `verify` names, anchored appends, segments.
use super::segment::HEADS;
use super::*;

/// Verifies against the watch list's head `recorded`: the result and the entries.
fn checked(p: &Path, recorded: Option<Head>) -> (Verified, Vec<Entry>) {
    let anchors: Vec<Anchor> = recorded
        .map(|head| Anchor {
            by: "the watch list".into(),
            head,
            segment: None,
        })
        .into_iter()
        .collect();
    let mut entries = Vec::new();
    let v = verify(p, &anchors, |e| entries.push(e.clone())).unwrap();
    (v, entries)
}

fn ev(action: &str, label: Option<&str>) -> Event {
    Event {
        actor: "alice".into(),
        action: action.into(),
        identity: label.map(|l| format!("id-{l}")),
        label: label.map(String::from),
        detail: None,
    }
}

fn log_of(n: usize) -> (PathBuf, Head) {
    let d = std::env::temp_dir().join(format!(
        "fw-audit-{}-{n}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("a.log");
    let mut head = Head::default();
    for i in 0..n {
        head = append(
            &p,
            &[ev("enroll", Some(&format!("p{i}")))],
            1_700_000_000 + i as i64,
        )
        .unwrap();
    }
    (p, head)
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(p: &Path, l: &[String]) {
    std::fs::write(p, l.iter().map(|s| format!("{s}\n")).collect::<String>()).unwrap();
}

#[test]
fn a_fresh_chain_verifies_and_its_head_is_the_last_line() {
    let (p, head) = log_of(5);
    let (v, entries) = checked(&p, Some(head));
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.head, head);
    assert_eq!(v.entries, 5);
    assert_eq!(entries[0].prev, hex(&GENESIS));
    assert_eq!(entries[4].label.as_deref(), Some("p4"));
    assert_eq!(entries[0].time, "2023-11-14T22:13:20Z");
}

#[test]
fn each_kind_of_change_is_found_and_named() {
    let (p, head) = log_of(6);
    let orig = lines(&p);
    let check_with = |l: Vec<String>| {
        write_lines(&p, &l);
        checked(&p, Some(head)).0.problems
    };
    // edited: line 3's label changed
    let mut l = orig.clone();
    l[2] = l[2].replace("p2", "px");
    assert_eq!(check_with(l), vec![Problem::Edited { line: 3, seq: 3 }]);
    // deleted: line 4 gone
    let mut l = orig.clone();
    l.remove(3);
    assert_eq!(
        check_with(l),
        vec![Problem::Deleted {
            line: 4,
            from: 4,
            to: 4
        }]
    );
    // inserted: a copy of line 2 put after it
    let mut l = orig.clone();
    l.insert(2, orig[1].clone());
    let got = check_with(l);
    assert!(
        got.contains(&Problem::Inserted { line: 3, seq: 2 }),
        "{got:?}"
    );
    // reordered: lines 2 and 4 swapped
    let mut l = orig.clone();
    l.swap(1, 3);
    let got = check_with(l);
    assert!(
        got.iter().any(|p| matches!(p, Problem::Reordered { .. })),
        "{got:?}"
    );
    // truncated: the last two lines cut off — only the recorded head shows it
    let l = orig[..4].to_vec();
    write_lines(&p, &l);
    assert!(checked(&p, None).0.problems.is_empty());
    assert_eq!(
        check_with(l),
        vec![Problem::Truncated {
            have: 4,
            want: 6,
            by: "the watch list".into()
        }]
    );
    // rewritten: line 5 edited and every later link recomputed (hashes are not secret)
    let mut l = orig[..4].to_vec();
    let mut prev = line_hash(l[3].as_bytes());
    for (seq, label) in [(5u64, "evil"), (6, "p5")] {
        let e = Entry {
            seq,
            time: utc(1),
            actor: "mallory".into(),
            action: "enroll".into(),
            identity: None,
            label: Some(label.into()),
            detail: None,
            prev: hex(&prev),
        };
        let s = serde_json::to_string(&e).unwrap();
        prev = line_hash(s.as_bytes());
        l.push(s);
    }
    assert_eq!(
        check_with(l),
        vec![Problem::Rewritten {
            line: 6,
            seq: 6,
            by: "the watch list".into()
        }]
    );
    // an incomplete last line
    std::fs::write(&p, format!("{}\n{}", orig[0], &orig[1][..10])).unwrap();
    assert_eq!(
        checked(&p, None).0.problems,
        vec![Problem::Unreadable { line: 2 }]
    );
    assert!(matches!(
        append(&p, &[ev("init", None)], 0),
        Err(AuditError::Damaged { .. })
    ));
}

#[test]
fn concurrent_writers_keep_one_valid_chain() {
    let (p, _) = log_of(0);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    append(
                        &p,
                        &[ev("match", Some(&format!("t{t}-{i}"))), ev("match", None)],
                        0,
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (v, _) = checked(&p, None);
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.head.seq, 200);
}

#[test]
fn an_anchored_append_refuses_a_log_cut_short_deleted_or_rewritten() {
    let (p, head) = log_of(4);
    let whole = std::fs::read(&p).unwrap();
    let by = "the watch list";
    let gap = |r: Result<Head, AuditError>| match r {
        Err(AuditError::Gap(g)) => g.found,
        other => panic!("not a gap: {other:?}"),
    };
    // Untouched: appended after the recorded head.
    let next = append_after(&p, Some(head), by, &[ev("remove", None)], 0).unwrap();
    assert_eq!(next.seq, 5);
    // Another writer's lines after the recorded head are the log going on, not a gap.
    let later = append(&p, &[ev("match", Some("p1"))], 0).unwrap();
    assert_eq!(check_tail(&p, Some(next), by).unwrap(), later);
    let whole5 = std::fs::read(&p).unwrap();
    // Cut to one line: refused, and nothing written.
    let first_line = whole.split_inclusive(|&b| b == b'\n').next().unwrap();
    std::fs::write(&p, first_line).unwrap();
    let found = gap(append_after(&p, Some(later), by, &[ev("x", None)], 0));
    assert!(
        matches!(found, Found::EndsAt(Head { seq: 1, .. })),
        "{found:?}"
    );
    assert_eq!(std::fs::read(&p).unwrap(), first_line);
    // Emptied, deleted.
    std::fs::write(&p, "").unwrap();
    assert_eq!(gap(check_tail(&p, Some(later), by)), Found::Empty);
    std::fs::remove_file(&p).unwrap();
    assert_eq!(gap(check_tail(&p, Some(later), by)), Found::Missing);
    assert!(!p.exists(), "a refused append created the log");
    // The recorded entry rewritten (its label changed, the later line relinked to it).
    let text = String::from_utf8(whole5).unwrap();
    let mut l: Vec<String> = text.lines().map(String::from).collect();
    l[4] = l[4].replace("remove", "rekey");
    let mut e: Entry = serde_json::from_str(&l[5]).unwrap();
    e.prev = hex(&line_hash(l[4].as_bytes()));
    l[5] = serde_json::to_string(&e).unwrap();
    write_lines(&p, &l);
    assert_eq!(
        gap(check_tail(&p, Some(next), by)),
        Found::Differs {
            tail: Head {
                seq: 6,
                hash: line_hash(l[5].as_bytes())
            },
            seq: 5
        }
    );
    // The message names the gap.
    let msg = check_tail(&p, Some(next), by).unwrap_err().to_string();
    assert!(
        msg.contains("the watch list recorded entry 5") && msg.contains("its entry 5 is not"),
        "{msg}"
    );
    // (Relinked after entry 4, the chain still reaches 4: only the whole `verify` sees the edit.)
    assert!(check_tail(&p, Some(head), by).is_ok());
}

#[test]
fn a_new_log_keeps_the_old_one_aside_and_names_its_head() {
    let (p, head) = log_of(3);
    let old = std::fs::read(&p).unwrap();
    let (new_head, aside) = start_new(
        &p,
        |aside, found| Event {
            detail: Some(format!("{:?} {}", aside.map(Path::display), found.unwrap())),
            ..ev("new-audit-log", None)
        },
        &[ev("enroll", Some("q"))],
        1_700_000_000,
    )
    .unwrap();
    let aside = aside.unwrap();
    assert_eq!(std::fs::read(&aside).unwrap(), old);
    assert!(
        aside
            .to_string_lossy()
            .ends_with("a.log.2023-11-14T221320Z")
    );
    let (v, entries) = checked(&p, Some(new_head));
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(entries.len(), 2);
    let detail = entries[0].detail.as_deref().unwrap();
    assert!(detail.contains(&head.to_string()), "{detail}");
    // A second new log in the same second does not overwrite the first one kept aside.
    let (_, aside2) = start_new(&p, |_, _| ev("new-audit-log", None), &[], 1_700_000_000).unwrap();
    assert_ne!(aside2.as_ref(), Some(&aside));
    assert_eq!(std::fs::read(&aside).unwrap(), old);
}

#[test]
fn the_element_starts_a_new_segment_after_a_gap_and_keeps_the_match() {
    let (p, _) = log_of(0);
    let first = |gap: &AuditError, aside: Option<&Path>| Event {
        detail: Some(format!("{gap}; old: {:?}", aside.map(Path::display))),
        ..ev("new-segment", None)
    };
    let a = append_anchored(&p, &[ev("match", Some("p"))], 0, first).unwrap();
    assert!(a.new_segment.is_none() && a.head_file_error.is_none());
    let b = append_anchored(&p, &[ev("match", Some("p"))], 0, first).unwrap();
    assert_eq!(read_head_file(&p).unwrap(), Some(b.head));
    // The log cut to its first line: the next match starts a new segment and is in it.
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, format!("{}\n", text.lines().next().unwrap())).unwrap();
    let c = append_anchored(&p, &[ev("match", Some("after"))], 0, first).unwrap();
    let (gap, aside) = c.new_segment.expect("a new segment");
    assert!(gap.to_string().contains("recorded entry 2"), "{gap}");
    assert!(aside.unwrap().exists());
    let (v, entries) = checked(&p, Some(c.head));
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(entries[0].action, "new-segment");
    assert!(
        entries[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("ends at entry 1")
    );
    assert_eq!(entries[1].label.as_deref(), Some("after"));
    // A damaged `.head` (or log end): a new segment too, the match kept.
    std::fs::write(head_file(&p), "garbage\n").unwrap();
    HEADS.lock().unwrap().clear();
    let e = append_anchored(&p, &[ev("match", Some("kept"))], 0, first).unwrap();
    assert!(e.new_segment.is_some());
    assert_eq!(read_head_file(&p).unwrap(), Some(e.head));
    // After a restart (no head in memory) the `.head` file is the anchor.
    HEADS.lock().unwrap().clear();
    std::fs::remove_file(&p).unwrap();
    let d = append_anchored(&p, &[ev("match", None)], 0, first).unwrap();
    assert!(d.new_segment.is_some(), "a deleted log was not noticed");
}

#[test]
fn verify_streams_bounded_lines_and_refuses_a_fifo() {
    // A line longer than MAX_LINE is a broken line, read past without being held.
    let (p, _) = log_of(2);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE));
    bytes.push(b'\n');
    std::fs::write(&p, &bytes).unwrap();
    assert_eq!(
        checked(&p, None).0.problems,
        vec![Problem::Unreadable { line: 3 }]
    );
    let fifo = p.with_extension("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(matches!(
        verify(&fifo, &[], |_| {}),
        Err(AuditError::NotAFile { .. })
    ));
    assert!(matches!(
        append(&fifo, &[ev("x", None)], 0),
        Err(AuditError::NotAFile { .. })
    ));
}

#[test]
fn an_entry_longer_than_verify_reads_is_not_written() {
    let (p, head) = log_of(2);
    let before = std::fs::read(&p).unwrap();
    let mut big = ev("identify", None);
    big.detail = Some("x".repeat(MAX_LINE));
    let r = append_after(&p, Some(head), "test", &[ev("identify", None), big], 0);
    assert!(
        matches!(&r, Err(AuditError::Io { reason, .. }) if reason.contains("longer than")),
        "{r:?}"
    );
    assert_eq!(std::fs::read(&p).unwrap(), before, "part of it was written");
    let mut small = ev("identify", None);
    small.detail = Some("x".repeat(MAX_LINE - 400));
    append_after(&p, Some(head), "test", &[small], 0).unwrap();
    assert!(checked(&p, None).0.problems.is_empty());
}

#[test]
fn a_capped_list_names_the_first_and_counts_the_rest() {
    let few = ["a.mp4", "b.mp4"];
    assert_eq!(capped_list(&few, 100), "a.mp4, b.mp4");
    let many: Vec<String> = (0..1000)
        .map(|i| format!("/videos/cam-{i:04}.mp4"))
        .collect();
    let s = capped_list(&many, NAMES_BUDGET);
    let shown = s.matches("/videos/").count();
    assert!((11..1000).contains(&shown), "{s}");
    assert!(s.len() <= NAMES_BUDGET + 32, "{} bytes", s.len());
    assert!(s.starts_with("/videos/cam-0000.mp4, /videos/cam-0001.mp4, "));
    assert!(
        s.ends_with(&format!(", … and {} more", 1000 - shown)),
        "{s}"
    );
    // One name longer than the budget: cut at a character boundary, never dropped.
    let long = ["é".repeat(100), "b".into()];
    let s = capped_list(&long, 51);
    assert_eq!(s, format!("{}…, … and 1 more", "é".repeat(25)));
    assert_eq!(capped_list::<&str>(&[], 10), "");
}
