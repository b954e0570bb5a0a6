use super::*;
use crate::forward::testing::event;

fn letter(n: u64) -> DeadLetter {
    DeadLetter {
        event: event(n),
        attempts: 3,
        error: format!("broker said no #{n}"),
        dead_lettered_at: DateTime::from_timestamp(1_700_000_100, 5).unwrap_or_default(),
    }
}

#[test]
fn the_line_has_the_documented_shape() {
    let mut l = letter(1);
    l.event.body = Bytes::from_static(b"{\"a\":1}");
    let line = l.to_line();
    let v: serde_json::Value = serde_json::from_slice(&line).expect("json");
    assert_eq!(v["event"]["id"], "01900000-0000-7000-8000-000000000001");
    assert_eq!(v["event"]["hook"], "/github");
    assert_eq!(v["event"]["event"], "pull_request.opened");
    assert_eq!(v["event"]["delivery_id"], "d-1");
    assert_eq!(v["event"]["body"], "{\"a\":1}");
    assert!(v["event"].get("body_base64").is_none());
    assert_eq!(v["attempts"], 3);
    assert_eq!(v["dead_lettered_at"], "2023-11-14T22:15:00.000000005Z");
}

#[test]
fn a_binary_body_goes_as_base64_and_comes_back_identical() {
    let mut l = letter(2);
    l.event.body = Bytes::from_static(&[0xff, 0x00, 0xfe, b'\n']);
    let line = l.to_line();
    let v: serde_json::Value = serde_json::from_slice(&line).expect("json");
    assert_eq!(v["event"]["body_base64"], "/wD+Cg==");
    assert!(v["event"].get("body").is_none());
    assert_eq!(DeadLetter::from_line(&line).expect("parses"), l);
}

#[test]
fn line_breaks_of_every_kind_are_escaped() {
    let mut l = letter(3);
    l.error = "a\nb\r\u{85}c\u{2028}d\u{2029}e\u{9f}f\u{202e}g\u{2066}".into();
    l.event.body = Bytes::from("x\u{2028}y\u{85}\u{200f}\n");
    let line = l.to_line();
    let text = std::str::from_utf8(&line).expect("utf-8");
    assert_eq!(text.matches('\n').count(), 1, "{text}");
    assert!(text.ends_with('\n'));
    for c in [
        '\r', '\u{85}', '\u{2028}', '\u{2029}', '\u{9f}', '\u{202e}', '\u{2066}', '\u{200f}',
    ] {
        assert!(!text.contains(c), "{c:?} raw in {text}");
    }
    assert!(text.contains(r"\u2028") && text.contains(r"\u0085") && text.contains(r"\u202e"));
    assert_eq!(DeadLetter::from_line(&line).expect("parses"), l);
}

#[test]
fn appended_letters_read_back_in_order_and_a_bad_line_does_not_stop_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bus.jsonl");
    append(&p, &letter(1)).expect("append");
    let mut f = OpenOptions::new().append(true).open(&p).expect("open");
    f.write_all(b"not json\n\n").expect("write");
    append(&p, &letter(2)).expect("append");
    let entries: Vec<Entry> = Reader::open(&p)
        .expect("open")
        .expect("exists")
        .collect::<io::Result<_>>()
        .expect("read");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].letter.as_ref().expect("ok"), &letter(1));
    assert!(entries[1].letter.is_err());
    assert_eq!(entries[1].line, 2);
    assert_eq!(entries[2].letter.as_ref().expect("ok"), &letter(2));
    assert!(Reader::open(&dir.path().join("none.jsonl"))
        .expect("open")
        .is_none());
}

#[test]
fn rewrite_drops_the_delivered_replaces_the_retried_and_keeps_the_rest_and_unparsable_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bus.jsonl");
    for n in 1..=3 {
        append(&p, &letter(n)).expect("append");
    }
    let mut f = OpenOptions::new().append(true).open(&p).expect("open");
    f.write_all(b"{broken\n").expect("write");
    let delivered = letter(2).event.id;
    let mut retried = letter(3);
    retried.attempts = 8;
    retried.error = "still no".into();
    let fate = |l: &DeadLetter| match l.event.id {
        id if id == delivered => Fate::Drop,
        id if id == retried.event.id => Fate::Replace(Box::new(retried.clone())),
        _ => Fate::Keep,
    };
    assert_eq!(rewrite(&p, fate).expect("rewrite"), 1);
    let text = fs::read_to_string(&p).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2], "{broken");
    assert!(!text.contains(&delivered.to_string()));
    assert_eq!(
        DeadLetter::from_line(lines[0].as_bytes()).expect("kept"),
        letter(1)
    );
    assert_eq!(
        DeadLetter::from_line(lines[1].as_bytes()).expect("replaced"),
        retried
    );
    // An append after the rewrite lands in the new file, not the replaced one.
    append(&p, &letter(4)).expect("append");
    assert_eq!(fs::read_to_string(&p).expect("read").lines().count(), 4);
}

#[test]
fn a_letter_appended_while_a_rewrite_holds_the_lock_lands_in_the_new_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bus.jsonl");
    for n in 1..=2 {
        append(&p, &letter(n)).expect("append");
    }
    let mut appender = None;
    let removed = rewrite(&p, |l| {
        if appender.is_none() {
            // The service dead-letters another event while the replay's rewrite holds the lock:
            // it opens the old file (or, later, the renamed one) and waits for the lock.
            let path = p.clone();
            appender = Some(std::thread::spawn(move || append(&path, &letter(3))));
        }
        if l.event.id == letter(1).event.id {
            Fate::Drop
        } else {
            Fate::Keep
        }
    })
    .expect("rewrite");
    assert_eq!(removed, 1);
    appender
        .expect("started")
        .join()
        .expect("joined")
        .expect("appended");
    let ids: Vec<_> = Reader::open(&p)
        .expect("open")
        .expect("exists")
        .map(|e| e.expect("read").letter.expect("letter").event.id)
        .collect();
    assert_eq!(ids, [letter(2).event.id, letter(3).event.id]);
}
